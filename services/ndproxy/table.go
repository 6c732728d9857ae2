package ndproxy

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// table is what the service knows about LAN host addresses: claims that a
// host holds one (a DAD probe, an NS or NA from it, the daemon's sighting:
// anyone on the LAN can send those for any address) and proof (the host
// answered the gizmo's own Neighbor Solicitation: its neighbour entry on
// the LAN became REACHABLE, RFC 4861 §7.3.1), and when the LAN said an
// address is gone. A claim alone keeps an address for unprovenAge only;
// proof keeps it for maxAge after the last. It is pure bookkeeping; the
// kernel is touched elsewhere.
type table struct {
	entries map[netip.Addr]*entry
	failed  map[netip.Addr]time.Time
	limit   int
	// maxAge and unprovenAge are Config.MaxAge and Config.UnprovenMaxAge.
	maxAge, unprovenAge time.Duration
}

// entry is one address's evidence.
type entry struct {
	// claimed is when the current run of claims began: an unproven
	// address is proxied until claimed+unprovenAge.
	claimed time.Time
	// seen is the latest evidence of either kind.
	seen time.Time
	// proven is the latest proof; zero: none.
	proven time.Time
}

func newTable(limit int, maxAge, unprovenAge time.Duration) *table {
	return &table{entries: map[netip.Addr]*entry{}, failed: map[netip.Addr]time.Time{}, limit: limit, maxAge: maxAge, unprovenAge: unprovenAge}
}

// learnResult says what learn did with a piece of evidence.
type learnResult int

const (
	learnNew     learnResult = iota // a new address
	learnRefresh                    // a known address, seen again
	learnStale                      // evidence older than the address's failure: ignored
	learnFull                       // the table is full of proven addresses: ignored
	learnBogus                      // not a global unicast address: ignored
)

// isProven reports whether e's proof is recent enough at now.
func (t *table) isProven(e *entry, now time.Time) bool {
	return !e.proven.IsZero() && now.Sub(e.proven) <= t.maxAge
}

// live reports whether e is still to be proxied at now.
func (t *table) live(e *entry, now time.Time) bool {
	if t.isProven(e, now) {
		return true
	}
	return now.Sub(e.claimed) <= t.unprovenAge && now.Sub(e.seen) <= t.maxAge
}

// learn records evidence that a LAN host held a at time at: proof when
// proof is set, else a claim. Evidence from before the address last failed
// is ignored: the daemon remembers host addresses longer than they live,
// and must not bring a gone host back. A full table makes room by
// forgetting the unproven address claimed first (evicted, invalid when
// none was).
func (t *table) learn(a netip.Addr, at time.Time, proof bool) (r learnResult, evicted netip.Addr) {
	a = a.WithZone("")
	if !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return learnBogus, netip.Addr{}
	}
	if f, ok := t.failed[a]; ok {
		if !at.After(f) {
			return learnStale, netip.Addr{}
		}
		delete(t.failed, a)
	}
	if e, ok := t.entries[a]; ok {
		if !t.live(e, at) && !proof {
			// A claim after the last one lapsed starts a new run, so that
			// a host back from sleep is proxied at once again.
			e.claimed = at
		}
		if at.After(e.seen) {
			e.seen = at
		}
		if proof && at.After(e.proven) {
			e.proven = at
		}
		return learnRefresh, netip.Addr{}
	}
	if len(t.entries) >= t.limit {
		var ok bool
		if evicted, ok = t.oldestUnproven(at); !ok {
			return learnFull, netip.Addr{}
		}
		delete(t.entries, evicted)
	}
	e := &entry{claimed: at, seen: at}
	if proof {
		e.proven = at
	}
	t.entries[a] = e
	return learnNew, evicted
}

// oldestUnproven is the address without proof at now whose claims began
// first.
func (t *table) oldestUnproven(now time.Time) (netip.Addr, bool) {
	var (
		best  netip.Addr
		bestE *entry
	)
	for a, e := range t.entries {
		if t.isProven(e, now) {
			continue
		}
		if bestE == nil || cmp.Or(e.claimed.Compare(bestE.claimed), a.Compare(best)) < 0 {
			best, bestE = a, e
		}
	}
	return best, bestE != nil
}

// fail records that a is gone from the LAN (RFC 4861 §7.3.3: the
// neighbour's entry became FAILED) and reports whether it was known.
func (t *table) fail(a netip.Addr, at time.Time) bool {
	_, known := t.entries[a]
	delete(t.entries, a)
	if known || len(t.failed) < t.limit {
		t.failed[a] = at
	}
	return known
}

// want returns the addresses to proxy under p at now: live, in the shared
// prefix, not the gizmo's own. Sorted.
func (t *table) want(p Plan, now time.Time) []netip.Addr {
	if !p.Prefix.IsValid() {
		return nil
	}
	var out []netip.Addr
	for a, e := range t.entries {
		if p.Prefix.Contains(a) && !slices.Contains(p.Own, a) && t.live(e, now) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// unproven are the addresses that have claims but no current proof at now,
// sorted.
func (t *table) unproven(now time.Time) []netip.Addr {
	var out []netip.Addr
	for a, e := range t.entries {
		if !t.isProven(e, now) && t.live(e, now) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// prune forgets what is no longer live at now and failure records older
// than maxAge, and returns the addresses it forgot, split by whether they
// ever had proof. A failure record can go once no sighting from before it
// can still arrive: the plan passes on sightings at most maxAge old.
func (t *table) prune(now time.Time) (gone, neverProven []netip.Addr) {
	for a, e := range t.entries {
		if t.live(e, now) {
			continue
		}
		delete(t.entries, a)
		if e.proven.IsZero() {
			neverProven = append(neverProven, a)
		} else {
			gone = append(gone, a)
		}
	}
	for a, f := range t.failed {
		if now.Sub(f) > t.maxAge {
			delete(t.failed, a)
		}
	}
	slices.SortFunc(gone, netip.Addr.Compare)
	slices.SortFunc(neverProven, netip.Addr.Compare)
	return gone, neverProven
}
