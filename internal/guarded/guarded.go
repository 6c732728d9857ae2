// Package guarded holds a service's counters behind a mutex: the service's
// goroutines add to them, the daemon reads snapshots for the dashboard and
// /metrics.
package guarded

import "sync"

// Stats guards a value of type S. The zero value is ready to use and
// snapshots by plain copy; a stats type with maps or slices needs Clone set,
// or a snapshot would share them with the writer.
type Stats[S any] struct {
	mu sync.Mutex
	s  S
	// Clone deep-copies what a plain copy would share (maps, slices).
	Clone func(S) S
}

// Add applies f to the value under the lock.
func (g *Stats[S]) Add(f func(*S)) {
	g.mu.Lock()
	f(&g.s)
	g.mu.Unlock()
}

// Snapshot returns a copy that the caller may keep and change.
func (g *Stats[S]) Snapshot() S {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.Clone != nil {
		return g.Clone(g.s)
	}
	return g.s
}
