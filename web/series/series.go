// Package series keeps the dashboard's traffic history: counters sampled
// every few seconds, folded into ring buffers at three resolutions
// (10 s × 1 h, 1 min × 24 h, 1 h × 90 days), so that memory stays bounded
// however long the gizmo runs. The store is saved to the state dir and
// loaded back, so a reboot keeps the history.
package series

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Categories is traffic in bytes by how it crossed the gizmo. The names
// are the dashboard's categories.
type Categories struct {
	NativeIPv6 uint64 `json:"native_ipv6"`
	NAT64DNS64 uint64 `json:"nat64_dns64"` // NAT64 to names resolved through DNS64
	NAT64CLAT  uint64 `json:"nat64_clat"`  // NAT64 from a host's CLAT (IPv4 literals)
	NAT44      uint64 `json:"nat44"`       // legacy hosts through NAT44
}

// Add returns c + o.
func (c Categories) Add(o Categories) Categories {
	return Categories{c.NativeIPv6 + o.NativeIPv6, c.NAT64DNS64 + o.NAT64DNS64, c.NAT64CLAT + o.NAT64CLAT, c.NAT44 + o.NAT44}
}

// Total is all bytes.
func (c Categories) Total() uint64 { return c.NativeIPv6 + c.NAT64DNS64 + c.NAT64CLAT + c.NAT44 }

// delta is c - prev, treating a counter that went backwards (a restart of
// its source) as a fresh start from zero.
func delta(c, prev Categories) Categories {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	return Categories{d(c.NativeIPv6, prev.NativeIPv6), d(c.NAT64DNS64, prev.NAT64DNS64), d(c.NAT64CLAT, prev.NAT64CLAT), d(c.NAT44, prev.NAT44)}
}

// DNS counts answers by kind.
type DNS struct {
	A           uint64 `json:"a"`
	AAAA        uint64 `json:"aaaa"`
	Synthesized uint64 `json:"synthesized"`
}

func (c DNS) add(o DNS) DNS { return DNS{c.A + o.A, c.AAAA + o.AAAA, c.Synthesized + o.Synthesized} }

func deltaDNS(c, prev DNS) DNS {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	return DNS{d(c.A, prev.A), d(c.AAAA, prev.AAAA), d(c.Synthesized, prev.Synthesized)}
}

// Sample is one reading of the cumulative counters.
type Sample struct {
	At    time.Time
	Total Categories
	Hosts map[string]Categories // by MAC
	DNS   DNS
}

// Point is the traffic within one bucket.
type Point struct {
	Start time.Time             `json:"start"`
	Total Categories            `json:"total"`
	Hosts map[string]Categories `json:"hosts,omitempty"`
	DNS   DNS                   `json:"dns"`
}

// Resolution is one ring: Step-wide buckets, Len of them.
type Resolution struct {
	Name string
	Step time.Duration
	Len  int
}

// DefaultResolutions are the dashboard's three rings.
var DefaultResolutions = []Resolution{
	{"10s", 10 * time.Second, 360},
	{"1m", time.Minute, 1440},
	{"1h", time.Hour, 90 * 24},
}

type ring struct {
	res    Resolution
	points []Point // oldest first, at most res.Len
}

func (r *ring) add(start time.Time, total Categories, hosts map[string]Categories, dns DNS) {
	start = start.Truncate(r.res.Step)
	if n := len(r.points); n > 0 && r.points[n-1].Start.Equal(start) {
		p := &r.points[n-1]
		p.Total = p.Total.Add(total)
		p.DNS = p.DNS.add(dns)
		for mac, c := range hosts {
			if p.Hosts == nil {
				p.Hosts = map[string]Categories{}
			}
			p.Hosts[mac] = p.Hosts[mac].Add(c)
		}
		return
	}
	p := Point{Start: start, Total: total, DNS: dns}
	if len(hosts) > 0 {
		p.Hosts = make(map[string]Categories, len(hosts))
		for mac, c := range hosts {
			p.Hosts[mac] = c
		}
	}
	r.points = append(r.points, p)
	if over := len(r.points) - r.res.Len; over > 0 {
		r.points = slices.Delete(r.points, 0, over)
	}
}

// Store is the history. It is safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	rings []*ring
	last  *Sample
}

// New returns an empty store with the given resolutions.
func New(res []Resolution) *Store {
	s := &Store{}
	for _, r := range res {
		s.rings = append(s.rings, &ring{res: r})
	}
	return s
}

// Add folds a sample into every ring. The first sample only sets the
// baseline: counters are cumulative, and traffic is the difference.
func (s *Store) Add(smp Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.last
	cp := smp
	s.last = &cp
	if prev == nil || !smp.At.After(prev.At) {
		return
	}
	total := delta(smp.Total, prev.Total)
	hosts := map[string]Categories{}
	for mac, c := range smp.Hosts {
		if d := delta(c, prev.Hosts[mac]); d.Total() > 0 {
			hosts[mac] = d
		}
	}
	dns := deltaDNS(smp.DNS, prev.DNS)
	for _, r := range s.rings {
		r.add(smp.At, total, hosts, dns)
	}
}

// Series returns the points of the named resolution since a time.
func (s *Store) Series(resolution string, since time.Time) ([]Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rings {
		if r.res.Name == resolution {
			i, _ := slices.BinarySearchFunc(r.points, since, func(p Point, t time.Time) int { return p.Start.Compare(t) })
			return slices.Clone(r.points[i:]), nil
		}
	}
	return nil, fmt.Errorf("series: no resolution %q", resolution)
}

// Sum adds up traffic since a time, from the finest ring that reaches that
// far back (or, if none does, the one that reaches furthest).
func (s *Store) Sum(since time.Time) (Categories, map[string]Categories) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *ring
	for _, r := range s.rings { // finest first
		if len(r.points) == 0 {
			continue
		}
		if !r.points[0].Start.After(since) {
			best = r
			break
		}
		if best == nil || r.points[0].Start.Before(best.points[0].Start) {
			best = r
		}
	}
	var total Categories
	hosts := map[string]Categories{}
	if best == nil {
		return total, hosts
	}
	for _, p := range best.points {
		if !p.Start.Add(best.res.Step).After(since) {
			continue
		}
		total = total.Add(p.Total)
		for mac, c := range p.Hosts {
			hosts[mac] = hosts[mac].Add(c)
		}
	}
	return total, hosts
}

// Saved is the store's content in its saved form.
type Saved struct {
	Rings map[string][]Point `json:"rings"`
}

// Save returns the store's content for saving.
func (s *Store) Save() Saved {
	s.mu.Lock()
	defer s.mu.Unlock()
	saved := Saved{Rings: map[string][]Point{}}
	for _, r := range s.rings {
		saved.Rings[r.res.Name] = slices.Clone(r.points)
	}
	return saved
}

// Restore loads saved content. The counter baseline is not restored: the
// counters' sources restarted too, so the next sample sets a new one.
func (s *Store) Restore(saved Saved) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rings {
		pts := saved.Rings[r.res.Name]
		if len(pts) > r.res.Len {
			pts = pts[len(pts)-r.res.Len:]
		}
		r.points = slices.Clone(pts)
	}
}
