// Package series keeps the dashboard's traffic history: counters sampled
// every few seconds, folded into ring buffers at three resolutions
// (10 s × 1 h, 1 min × 24 h, 1 h × 90 days), so that memory stays bounded
// however long the gizmo runs. Only the finest ring keeps the per-host
// breakdown (Resolution.PerHost), which bounds memory at 500 hosts to a few
// megabytes (docs/performance.md). The store is saved to the state dir and
// loaded back, so a reboot keeps the history.
package series

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unique"
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

// Point is the traffic within one bucket. Hosts is filled only for rings
// that keep the per-host breakdown, and only by HostSeries.
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
	// PerHost keeps each host's traffic in every bucket. It costs up to
	// 40 bytes per active host per bucket, so only the short ring keeps
	// it: 500 busy hosts over 90 days of hourly buckets would need 86 MB,
	// over an hour of 10 s buckets 7 MB. Per-host totals since boot come
	// from the services' counters instead.
	PerHost bool
}

// DefaultResolutions are the dashboard's three rings.
var DefaultResolutions = []Resolution{
	{Name: "10s", Step: 10 * time.Second, Len: 360, PerHost: true},
	{Name: "1m", Step: time.Minute, Len: 1440},
	{Name: "1h", Step: time.Hour, Len: 90 * 24},
}

// hostBytes is one host's traffic in a bucket. The MAC is interned: the
// same few hundred addresses recur in every bucket.
type hostBytes struct {
	mac unique.Handle[string]
	c   Categories
}

// bucket is a Point as stored: per-host traffic as a slice sorted by MAC,
// a third of the size of a map.
type bucket struct {
	start time.Time
	total Categories
	dns   DNS
	hosts []hostBytes
}

func (b *bucket) point(withHosts bool) Point {
	p := Point{Start: b.start, Total: b.total, DNS: b.dns}
	if withHosts && len(b.hosts) > 0 {
		p.Hosts = make(map[string]Categories, len(b.hosts))
		for _, h := range b.hosts {
			p.Hosts[h.mac.Value()] = h.c
		}
	}
	return p
}

func cmpHost(a, b hostBytes) int { return strings.Compare(a.mac.Value(), b.mac.Value()) }

// mergeHosts adds two MAC-sorted lists into a new one.
func mergeHosts(a, b []hostBytes) []hostBytes {
	out := make([]hostBytes, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := cmpHost(a[i], b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, hostBytes{a[i].mac, a[i].c.Add(b[j].c)})
			i, j = i+1, j+1
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

type ring struct {
	res     Resolution
	buckets []bucket // oldest first, at most res.Len
}

func (r *ring) add(start time.Time, total Categories, hosts []hostBytes, dns DNS) {
	if !r.res.PerHost {
		hosts = nil
	}
	start = start.Truncate(r.res.Step)
	if n := len(r.buckets); n > 0 && r.buckets[n-1].start.Equal(start) {
		b := &r.buckets[n-1]
		b.total = b.total.Add(total)
		b.dns = b.dns.add(dns)
		if len(hosts) > 0 {
			b.hosts = mergeHosts(b.hosts, hosts)
		}
		return
	}
	r.push(bucket{start: start, total: total, dns: dns, hosts: slices.Clone(hosts)})
}

func (r *ring) push(b bucket) {
	if len(r.buckets) < r.res.Len {
		r.buckets = append(r.buckets, b)
		return
	}
	// Full: shift in place rather than reslicing, so that the backing
	// array never grows past Len.
	copy(r.buckets, r.buckets[1:])
	r.buckets[len(r.buckets)-1] = b
}

// since is the index of the first bucket that starts at or after t.
func (r *ring) since(t time.Time) int {
	i, _ := slices.BinarySearchFunc(r.buckets, t, func(b bucket, t time.Time) int { return b.start.Compare(t) })
	return i
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
		s.rings = append(s.rings, &ring{res: r, buckets: make([]bucket, 0, min(r.Len, 64))})
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
	var hosts []hostBytes
	for mac, c := range smp.Hosts {
		if d := delta(c, prev.Hosts[mac]); d.Total() > 0 {
			hosts = append(hosts, hostBytes{unique.Make(mac), d})
		}
	}
	slices.SortFunc(hosts, cmpHost)
	dns := deltaDNS(smp.DNS, prev.DNS)
	for _, r := range s.rings {
		r.add(smp.At, total, hosts, dns)
	}
}

func (s *Store) series(resolution string, since time.Time, withHosts bool) ([]Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rings {
		if r.res.Name == resolution {
			bs := r.buckets[r.since(since):]
			out := make([]Point, len(bs))
			for i := range bs {
				out[i] = bs[i].point(withHosts)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("series: no resolution %q", resolution)
}

// Series returns the totals of the named resolution since a time, without
// the per-host breakdown (what charts need).
func (s *Store) Series(resolution string, since time.Time) ([]Point, error) {
	return s.series(resolution, since, false)
}

// HostSeries is Series with each point's per-host traffic, for the rings
// that keep it (Resolution.PerHost).
func (s *Store) HostSeries(resolution string, since time.Time) ([]Point, error) {
	return s.series(resolution, since, true)
}

// Sum adds up traffic since a time, from the finest ring that reaches that
// far back (or, if none does, the one that reaches furthest).
func (s *Store) Sum(since time.Time) Categories {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *ring
	for _, r := range s.rings { // finest first
		if len(r.buckets) == 0 {
			continue
		}
		if !r.buckets[0].start.After(since) {
			best = r
			break
		}
		if best == nil || r.buckets[0].start.Before(best.buckets[0].start) {
			best = r
		}
	}
	var total Categories
	if best == nil {
		return total
	}
	for _, b := range best.buckets {
		if b.start.Add(best.res.Step).After(since) {
			total = total.Add(b.total)
		}
	}
	return total
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
		pts := make([]Point, len(r.buckets))
		for i := range r.buckets {
			pts[i] = r.buckets[i].point(true)
		}
		saved.Rings[r.res.Name] = pts
	}
	return saved
}

// Restore loads saved content. The counter baseline is not restored: the
// counters' sources restarted too, so the next sample sets a new one.
func (s *Store) Restore(saved Saved) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rings {
		// Saved files are outside input: keep the buckets in order and
		// drop duplicates rather than trusting the file.
		pts := slices.Clone(saved.Rings[r.res.Name])
		slices.SortStableFunc(pts, func(a, b Point) int { return a.Start.Compare(b.Start) })
		if len(pts) > r.res.Len {
			pts = pts[len(pts)-r.res.Len:]
		}
		r.buckets = make([]bucket, 0, max(len(pts), min(r.res.Len, 64)))
		for _, p := range pts {
			if n := len(r.buckets); n > 0 && !p.Start.After(r.buckets[n-1].start) {
				continue
			}
			b := bucket{start: p.Start, total: p.Total, dns: p.DNS}
			if r.res.PerHost {
				for mac, c := range p.Hosts {
					b.hosts = append(b.hosts, hostBytes{unique.Make(mac), c})
				}
				slices.SortFunc(b.hosts, cmpHost)
			}
			r.buckets = append(r.buckets, b)
		}
	}
}
