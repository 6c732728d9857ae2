package servicecore

import (
	"io"
	"log/slog"
	"maps"
	"testing"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type stats struct {
	Plans   int
	Dropped map[string]uint64
}

func (s stats) clone() stats {
	s.Dropped = maps.Clone(s.Dropped)
	return s
}

// The counters start at Init's value, and a snapshot keeps its own map.
func TestInitStartsCountersAndSnapshotsCopy(t *testing.T) {
	var c Core[string, stats]
	if err := c.Init("test", "lan0", discard, stats{Dropped: map[string]uint64{}}, stats.clone); err != nil {
		t.Fatal(err)
	}
	c.Count(func(s *stats) { s.Dropped["short"]++ })
	snap := c.Stats()
	c.Count(func(s *stats) { s.Dropped["short"]++ })
	if snap.Dropped["short"] != 1 {
		t.Fatalf("snapshot changed after it was taken: %v", snap.Dropped)
	}
	if got := c.Stats().Dropped["short"]; got != 2 {
		t.Fatalf("Dropped[short] = %d, want 2", got)
	}
}

// Update never blocks and the newest plan wins over one not yet taken.
func TestUpdateNewestPlanWins(t *testing.T) {
	var c Core[string, stats]
	if err := c.Init("test", "lan0", discard, stats{}, nil); err != nil {
		t.Fatal(err)
	}
	c.Update("first")
	c.Update("second")
	<-c.Plans().C()
	if p, ok := c.Plans().Take(); !ok || p != "second" {
		t.Fatalf("Take = %q, %v; want second, true", p, ok)
	}
	if _, ok := c.Plans().Take(); ok {
		t.Fatal("a second Take found a plan")
	}
}

// A service made for no interface is refused, with its name in the error.
func TestInitRefusesNoInterface(t *testing.T) {
	var c Core[string, stats]
	err := c.Init("ra", "", discard, stats{}, nil)
	if err == nil || err.Error() != "ra: no interface" {
		t.Fatalf("Init without interface = %v, want \"ra: no interface\"", err)
	}
}
