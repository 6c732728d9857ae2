package dns64

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimiterBurstAndRefill(t *testing.T) {
	l := newLimiter(10, 3) // one token per 100 ms
	a := netip.MustParseAddr("2001:db8:1::10")
	t0 := time.Unix(1_000_000, 0)
	for i := range 3 {
		if !l.allow(a, t0) {
			t.Fatalf("query %d of the burst refused", i+1)
		}
	}
	if l.allow(a, t0) {
		t.Fatal("fourth query at once allowed with burst 3")
	}
	if l.allow(a, t0.Add(99*time.Millisecond)) {
		t.Error("allowed before a token refilled")
	}
	if !l.allow(a, t0.Add(100*time.Millisecond)) {
		t.Error("refused after a token refilled")
	}
	// A long pause refills the burst, and no more than the burst.
	later := t0.Add(time.Hour)
	n := 0
	for range 10 {
		if l.allow(a, later) {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d allowed after an hour's pause, want the burst of 3", n)
	}
	if !l.allow(netip.MustParseAddr("2001:db8:1::11"), t0) {
		t.Error("another client was limited too")
	}
}

// The readers on both cores share a busy client's bucket: however their
// queries interleave, exactly the burst gets through at one instant.
func TestLimiterConcurrentClients(t *testing.T) {
	const burst = 1000
	l := newLimiter(1, burst)
	a := netip.MustParseAddr("2001:db8:1::10")
	now := time.Now()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range burst {
				if l.allow(a, now) {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != burst {
		t.Errorf("%d of %d queries allowed, want the burst of %d", got, 4*burst, burst)
	}
}

func TestLimiterSweepsRefilledBuckets(t *testing.T) {
	l := newLimiter(1000, 2)
	t0 := time.Unix(1_000_000, 0)
	busy := netip.MustParseAddr("2001:db8:1::1")
	l.allow(busy, t0)
	l.allow(busy, t0)
	for i := range maxBuckets - 1 {
		l.allow(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), t0)
	}
	if len(l.buckets) != maxBuckets {
		t.Fatalf("%d buckets, want %d", len(l.buckets), maxBuckets)
	}
	// 1.5 ms later the one-query clients have refilled and the busy one
	// has not: a new client sweeps the refilled ones away.
	l.allow(netip.MustParseAddr("2001:db8:1::2"), t0.Add(1500*time.Microsecond))
	if len(l.buckets) != 2 || l.buckets[busy] == nil {
		t.Errorf("after the sweep %d buckets (busy kept: %v), want the busy client's and the new one", len(l.buckets), l.buckets[busy] != nil)
	}
}
