// Package series keeps the dashboard's traffic history: counters sampled
// every few seconds, folded into ring buffers at three resolutions
// (10 s × 1 h, 1 min × 24 h, 1 h × 90 days), so that memory stays bounded
// however long the gizmo runs. The newest buckets of a ring can keep the
// per-host breakdown too (Resolution.HostLen): the 10 s ring for its hour,
// the 1 h ring for 7 days, each bucket with at most MaxHostsPerBucket
// hosts, which bounds memory at a few megabytes whatever the LAN does
// (docs/performance.md). The store is saved to the state dir and loaded
// back, so a reboot keeps the history.
package series

import (
	"cmp"
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
	// LANLegacy is IPv6-only hosts' traffic with the LAN's own IPv4-only
	// devices, through the NAT64's LAN pool.
	LANLegacy uint64 `json:"lan_legacy"`
}

// Add returns c + o.
func (c Categories) Add(o Categories) Categories {
	return Categories{c.NativeIPv6 + o.NativeIPv6, c.NAT64DNS64 + o.NAT64DNS64, c.NAT64CLAT + o.NAT64CLAT, c.NAT44 + o.NAT44,
		c.LANLegacy + o.LANLegacy}
}

// Total is all bytes.
func (c Categories) Total() uint64 {
	return c.NativeIPv6 + c.NAT64DNS64 + c.NAT64CLAT + c.NAT44 + c.LANLegacy
}

// delta is c - prev, treating a counter that went backwards (a restart of
// its source) as a fresh start from zero.
func delta(c, prev Categories) Categories {
	d := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	return Categories{d(c.NativeIPv6, prev.NativeIPv6), d(c.NAT64DNS64, prev.NAT64DNS64), d(c.NAT64CLAT, prev.NAT64CLAT), d(c.NAT44, prev.NAT44),
		d(c.LANLegacy, prev.LANLegacy)}
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
	// HostLen is how many of the newest buckets keep each host's traffic
	// (0: none). A host costs 48 bytes per bucket, so only short spans
	// keep it: 500 busy hosts over 90 days of hourly buckets would need
	// 103 MB, over 7 days 4.1 MB. Each bucket keeps at most
	// MaxHostsPerBucket hosts.
	HostLen int
}

// MaxHostsPerBucket bounds the per-host breakdown of one bucket: beyond
// it, the least busy hosts' traffic is added up under Other (and counted,
// Stats.HostsFolded), so that the totals stay right and memory bounded
// however many addresses a LAN shows.
const MaxHostsPerBucket = 512

// Other is the key of the folded hosts' traffic in Point.Hosts.
const Other = "other"

// DefaultResolutions are the dashboard's three rings: the 10 s ring keeps
// each host's traffic for its hour, the 1 h ring for 7 days.
var DefaultResolutions = []Resolution{
	{Name: "10s", Step: 10 * time.Second, Len: 360, HostLen: 360},
	{Name: "1m", Step: time.Minute, Len: 1440},
	{Name: "1h", Step: time.Hour, Len: 90 * 24, HostLen: 7 * 24},
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

// capHosts keeps the MaxHostsPerBucket-1 busiest hosts of a MAC-sorted
// list and adds the rest up under Other, and returns how many hosts it
// folded (an existing Other entry is no host).
func capHosts(hosts []hostBytes, max int) ([]hostBytes, int) {
	if len(hosts) <= max {
		return hosts, 0
	}
	other := unique.Make(Other)
	byBytes := slices.Clone(hosts)
	slices.SortStableFunc(byBytes, func(a, b hostBytes) int {
		// Other goes last, so that it is folded into itself.
		if (a.mac == other) != (b.mac == other) {
			if a.mac == other {
				return 1
			}
			return -1
		}
		return cmp.Compare(b.c.Total(), a.c.Total())
	})
	kept := byBytes[:max-1]
	rest := hostBytes{mac: other}
	folded := 0
	for _, h := range byBytes[max-1:] {
		rest.c = rest.c.Add(h.c)
		if h.mac != other {
			folded++
		}
	}
	out := append(slices.Clone(kept), rest)
	slices.SortFunc(out, cmpHost)
	return out, folded
}

type ring struct {
	res     Resolution
	buckets []bucket // oldest first, at most res.Len
}

// add folds traffic into the bucket of start and returns how many hosts
// the per-bucket cap folded.
func (r *ring) add(start time.Time, total Categories, hosts []hostBytes, dns DNS) int {
	if r.res.HostLen == 0 {
		hosts = nil
	}
	start = start.Truncate(r.res.Step)
	if n := len(r.buckets); n > 0 && r.buckets[n-1].start.Equal(start) {
		b := &r.buckets[n-1]
		b.total = b.total.Add(total)
		b.dns = b.dns.add(dns)
		folded := 0
		if len(hosts) > 0 {
			b.hosts, folded = capHosts(mergeHosts(b.hosts, hosts), MaxHostsPerBucket)
		}
		return folded
	}
	hosts, folded := capHosts(slices.Clone(hosts), MaxHostsPerBucket)
	r.push(bucket{start: start, total: total, dns: dns, hosts: hosts})
	return folded
}

func (r *ring) push(b bucket) {
	if len(r.buckets) < r.res.Len {
		r.buckets = append(r.buckets, b)
	} else {
		// Full: shift in place rather than reslicing, so that the
		// backing array never grows past Len.
		copy(r.buckets, r.buckets[1:])
		r.buckets[len(r.buckets)-1] = b
	}
	// The bucket that just left the newest HostLen keeps its totals only.
	if i := len(r.buckets) - r.res.HostLen - 1; i >= 0 {
		r.buckets[i].hosts = nil
	}
}

// since is the index of the first bucket that starts at or after t.
func (r *ring) since(t time.Time) int {
	i, _ := slices.BinarySearchFunc(r.buckets, t, func(b bucket, t time.Time) int { return b.start.Compare(t) })
	return i
}

// Store is the history. It is safe for concurrent use.
type Store struct {
	mu     sync.Mutex
	rings  []*ring
	last   *Sample
	folded uint64
}

// Stats are the store's own counters, for /metrics.
type Stats struct {
	// HostsFolded counts host entries added up under Other because a
	// bucket held MaxHostsPerBucket hosts already.
	HostsFolded uint64
	// HostEntries is how many per-host entries the rings hold.
	HostEntries int
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{HostsFolded: s.folded}
	for _, r := range s.rings {
		for i := range r.buckets {
			st.HostEntries += len(r.buckets[i].hosts)
		}
	}
	return st
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
		s.folded += uint64(r.add(smp.At, total, hosts, dns))
	}
}

func (s *Store) series(resolution string, since time.Time, withHosts bool) ([]Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ring(resolution)
	if r == nil {
		return nil, fmt.Errorf("series: no resolution %q", resolution)
	}
	bs := r.buckets[r.since(since):]
	out := make([]Point, len(bs))
	for i := range bs {
		out[i] = bs[i].point(withHosts)
	}
	return out, nil
}

// Series returns the totals of the named resolution since a time, without
// the per-host breakdown (what charts need).
func (s *Store) Series(resolution string, since time.Time) ([]Point, error) {
	return s.series(resolution, since, false)
}

// HostSeries is Series with each point's per-host traffic, for the
// buckets that keep it (Resolution.HostLen).
func (s *Store) HostSeries(resolution string, since time.Time) ([]Point, error) {
	return s.series(resolution, since, true)
}

// HostPoints is one host's traffic in the buckets that keep the per-host
// breakdown, as points whose Total is the host's traffic. Buckets in which
// the host was quiet are points with zero traffic; without a per-host
// breakdown in the ring there are no points.
func (s *Store) HostPoints(resolution, mac string, since time.Time) ([]Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ring(resolution)
	if r == nil {
		return nil, fmt.Errorf("series: no resolution %q", resolution)
	}
	from := max(r.since(since), len(r.buckets)-r.res.HostLen)
	var out []Point
	for _, b := range r.buckets[from:] {
		p := Point{Start: b.start}
		if i, ok := slices.BinarySearchFunc(b.hosts, mac, func(h hostBytes, mac string) int { return strings.Compare(h.mac.Value(), mac) }); ok {
			p.Total = b.hosts[i].c
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Store) ring(resolution string) *ring {
	for _, r := range s.rings {
		if r.res.Name == resolution {
			return r
		}
	}
	return nil
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
		var from []int // the point each bucket came from
		for i, p := range pts {
			if n := len(r.buckets); n > 0 && !p.Start.After(r.buckets[n-1].start) {
				continue
			}
			r.buckets = append(r.buckets, bucket{start: p.Start, total: p.Total, dns: p.DNS})
			from = append(from, i)
		}
		// Per-host data only where the ring keeps it: the newest HostLen
		// buckets, each within the cap, however large the file.
		for i := max(0, len(r.buckets)-r.res.HostLen); i < len(r.buckets); i++ {
			var hosts []hostBytes
			for mac, c := range pts[from[i]].Hosts {
				hosts = append(hosts, hostBytes{unique.Make(mac), c})
			}
			slices.SortFunc(hosts, cmpHost)
			r.buckets[i].hosts, _ = capHosts(hosts, MaxHostsPerBucket)
		}
	}
}
