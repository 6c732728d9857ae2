package ndproxy

import (
	"net/netip"
	"slices"
	"time"
)

// table is what the service knows about LAN host addresses: the last
// evidence that a host holds each one, and when the LAN said an address
// is gone. It is pure bookkeeping; the kernel is touched elsewhere.
type table struct {
	seen   map[netip.Addr]time.Time
	failed map[netip.Addr]time.Time
	limit  int
}

func newTable(limit int) *table {
	return &table{seen: map[netip.Addr]time.Time{}, failed: map[netip.Addr]time.Time{}, limit: limit}
}

// learnResult says what learn did with a piece of evidence.
type learnResult int

const (
	learnNew     learnResult = iota // a new address
	learnRefresh                    // a known address, seen again
	learnStale                      // evidence older than the address's failure: ignored
	learnFull                       // the table is full: ignored
	learnBogus                      // not a global unicast address: ignored
)

// learn records evidence that a LAN host held a at time at. Evidence from
// before the address last failed is ignored: the daemon remembers host
// addresses longer than they live, and must not bring a gone host back.
func (t *table) learn(a netip.Addr, at time.Time) learnResult {
	a = a.WithZone("")
	if !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() || a.IsPrivate() {
		return learnBogus
	}
	if f, ok := t.failed[a]; ok {
		if !at.After(f) {
			return learnStale
		}
		delete(t.failed, a)
	}
	if cur, ok := t.seen[a]; ok {
		if at.After(cur) {
			t.seen[a] = at
		}
		return learnRefresh
	}
	if len(t.seen) >= t.limit {
		return learnFull
	}
	t.seen[a] = at
	return learnNew
}

// fail records that a is gone from the LAN (RFC 4861 §7.3.3: the
// neighbour's entry became FAILED) and reports whether it was known.
func (t *table) fail(a netip.Addr, at time.Time) bool {
	_, known := t.seen[a]
	delete(t.seen, a)
	if known || len(t.failed) < t.limit {
		t.failed[a] = at
	}
	return known
}

// want returns the addresses to proxy under p at now: known, in the
// shared prefix, not the gizmo's own, and seen within maxAge. Sorted.
func (t *table) want(p Plan, now time.Time, maxAge time.Duration) []netip.Addr {
	if !p.Prefix.IsValid() {
		return nil
	}
	var out []netip.Addr
	for a, seen := range t.seen {
		if p.Prefix.Contains(a) && !slices.Contains(p.Own, a) && now.Sub(seen) <= maxAge {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// prune forgets addresses without evidence for longer than maxAge and
// failure records older than that, and returns the addresses it forgot.
// A failure record can go once no sighting from before it can still
// arrive: the plan passes on sightings at most maxAge old.
func (t *table) prune(now time.Time, maxAge time.Duration) []netip.Addr {
	var gone []netip.Addr
	for a, seen := range t.seen {
		if now.Sub(seen) > maxAge {
			delete(t.seen, a)
			gone = append(gone, a)
		}
	}
	for a, f := range t.failed {
		if now.Sub(f) > maxAge {
			delete(t.failed, a)
		}
	}
	slices.SortFunc(gone, netip.Addr.Compare)
	return gone
}
