package guarded

import (
	"maps"
	"sync"
	"testing"
)

type stats struct {
	Total   uint64
	Dropped map[string]uint64
}

// A snapshot must not change when the writer goes on counting.
func TestSnapshotIsACopy(t *testing.T) {
	g := Stats[stats]{Clone: func(s stats) stats {
		s.Dropped = maps.Clone(s.Dropped)
		return s
	}}
	g.Add(func(s *stats) { s.Dropped = map[string]uint64{"short": 1}; s.Total++ })
	snap := g.Snapshot()
	g.Add(func(s *stats) { s.Dropped["short"]++; s.Total++ })
	if snap.Total != 1 || snap.Dropped["short"] != 1 {
		t.Fatalf("snapshot changed after it was taken: %+v", snap)
	}
	if now := g.Snapshot(); now.Total != 2 || now.Dropped["short"] != 2 {
		t.Fatalf("second snapshot = %+v, want 2 and 2", now)
	}
}

// Concurrent adds are not lost (run with -race).
func TestConcurrentAdds(t *testing.T) {
	var g Stats[stats]
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				g.Add(func(s *stats) { s.Total++ })
			}
		}()
	}
	wg.Wait()
	if got := g.Snapshot().Total; got != 8000 {
		t.Fatalf("Total = %d, want 8000", got)
	}
}
