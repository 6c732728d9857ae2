package dns64

import (
	"hash/maphash"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Stats is a snapshot of the service's counters for the dashboard and
// /metrics. Maps are fresh copies the caller may keep.
type Stats struct {
	Queries uint64 // queries handled (after fair queuing)
	// Fairness counts the queries dropped so that every client gets its
	// share, by reason.
	Fairness    FairnessDrops
	Overloaded  uint64 // queries dropped because too many waited for upstreams
	Malformed   uint64 // FORMERR, NOTIMP and BADVERS answers
	Refused     uint64 // unsupported classes and zone transfers
	ServFail    uint64 // answers with SERVFAIL
	NXDomain    uint64 // answers with NXDOMAIN
	Synthesized uint64 // AAAA answers synthesized (RFC 6147)
	Excluded    uint64 // AAAA records dropped as excluded (RFC 6147 §5.1.4)
	Local       uint64 // answered from local data (home.arpa, ipv4only.arpa, PTR)
	Truncated   uint64 // UDP answers sent with TC
	CacheHits   uint64
	CacheMisses uint64

	CacheEntries  int
	CacheBytes    int
	CacheMaxBytes int
	MemoEntries   int // packed answers remembered for repeated questions

	BySource  map[Source]uint64 // which listening address (information source) was used
	ByType    map[string]uint64 // query type mnemonic → count
	Upstreams []UpstreamStats
	Hosts     map[string]HostStats // keyed by MAC, or by address for unknown clients
}

// FairnessDrops are the queries dropped to keep the service fair (fair.go).
type FairnessDrops struct {
	// LongestQueue: a UDP reader's queue was full, and the query dropped
	// was one of the client with the most queued.
	LongestQueue uint64
	// UpstreamShare: the client already had its share of the queries
	// waiting for an upstream.
	UpstreamShare uint64
	// Steered counts the times a flooding source was steered to a socket
	// of its own (steer.go); its queries are then dropped there.
	Steered uint64
	// TCPRefused: TCP connections closed at once because the client had
	// its share open, or the service had as many as it takes.
	TCPRefused uint64
}

// HostStats are one host's counters.
type HostStats struct {
	Host        string
	LastAddr    netip.Addr
	DNS64       bool // policy applied to the last query
	Queries     uint64
	Synthesized uint64
	ByType      map[string]uint64
	BySource    map[Source]uint64
	// TopSynthesized are the names that most often needed synthesis: the
	// host's legacy-only destinations, most frequent first.
	TopSynthesized []NameCount
}

// NameCount is one entry of a top-N list.
type NameCount struct {
	Name  string
	Count uint64
}

const (
	maxHosts    = 4096 // beyond this, unknown clients share one "other" entry
	topNTracked = 64   // names tracked per host (space-saving algorithm)
	topNShown   = 10
)

type counters struct {
	queries, longestQueue, upstreamShare, steered, overloaded       atomic.Uint64
	malformed, tcpRefused                                           atomic.Uint64
	refused, servfail                                               atomic.Uint64
	nxdomain                                                        atomic.Uint64
	synthesized, excluded, local, truncated, cacheHits, cacheMisses atomic.Uint64
	byType                                                          [257]atomic.Uint64 // index 256: types ≥ 256

	bySource sourceCounts

	// stripeSeed picks a synthesized name's stripe of a host's top list.
	stripeSeed maphash.Seed

	mu    sync.RWMutex
	hosts map[hostKey]*hostCounters
}

// hostKey identifies a host for the statistics: its MAC when the plan knows
// it, else its address. A struct rather than the address's string, so that
// finding a host's counters costs no allocation per query.
type hostKey struct {
	mac  string
	addr netip.Addr // only when mac is empty
}

// otherHosts is where the clients beyond maxHosts are counted.
var otherHosts = hostKey{mac: "other"}

func (k hostKey) String() string {
	if k.mac != "" {
		return k.mac
	}
	return k.addr.String()
}

// hostCounters are one host's counters. Counting a query takes no lock
// that another query can hold: the UDP readers on both cores count the
// same host (a phone asking for A and AAAA at once), and a reader whose
// CPU is taken away while it holds a host's lock makes the other wait
// (docs/performance.md, "Counting without locks"). Only a synthesized
// answer takes a lock, one of topStripes chosen by the name.
type hostCounters struct {
	lastAddr    atomic.Pointer[netip.Addr]
	dns64       atomic.Bool
	queries     atomic.Uint64
	synthesized atomic.Uint64
	byType      typeCounts
	bySource    sourceCounts
	top         [topStripes]topStripe
}

// typeCounts counts queries by type: the types up to HTTPS (65) and ANY
// in fixed slots, which cost no lookup, and the rare others by key.
type typeCounts struct {
	slots [67]atomic.Uint64 // index 66: ANY
	rare  keyedCounts[uint16]
}

func (t *typeCounts) add(qtype uint16) {
	switch {
	case int(qtype) < len(t.slots)-1:
		t.slots[qtype].Add(1)
	case qtype == dns.TypeANY:
		t.slots[len(t.slots)-1].Add(1)
	default:
		t.rare.add(qtype)
	}
}

func (t *typeCounts) each(f func(uint16, uint64)) {
	for i := range t.slots {
		if v := t.slots[i].Load(); v > 0 {
			qtype := uint16(i)
			if i == len(t.slots)-1 {
				qtype = dns.TypeANY
			}
			f(qtype, v)
		}
	}
	t.rare.each(f)
}

// sourceCounts counts queries by information source: the known ones in
// fixed slots, any other by key.
type sourceCounts struct {
	slots [len(knownSources)]atomic.Uint64
	other keyedCounts[Source]
}

var knownSources = [...]Source{SourceRDNSS, SourceDHCPv6, SourceDHCPv4, SourceOther}

func (c *sourceCounts) add(s Source) {
	for i, k := range knownSources {
		if s == k {
			c.slots[i].Add(1)
			return
		}
	}
	c.other.add(s)
}

func (c *sourceCounts) each(f func(Source, uint64)) {
	for i := range c.slots {
		if v := c.slots[i].Load(); v > 0 {
			f(knownSources[i], v)
		}
	}
	c.other.each(f)
}

// topStripes splits a host's top list of synthesized names by a hash of
// the name, each part under its own lock. A name always lands in the same
// stripe, so the stripes hold disjoint names and their union is the list.
const topStripes = 8

type topStripe struct {
	mu    sync.Mutex
	names topNames
}

// keyedCounts is a set of counters looked up by key, for keys that are
// few and come back (query types, information sources): the counters are
// atomic and found under a read lock, which another reader never waits
// for; only the first count of a new key takes the write lock.
type keyedCounts[K comparable] struct {
	mu sync.RWMutex
	m  map[K]*atomic.Uint64
}

func (k *keyedCounts[K]) add(key K) {
	k.mu.RLock()
	v := k.m[key]
	k.mu.RUnlock()
	if v == nil {
		k.mu.Lock()
		if v = k.m[key]; v == nil {
			if k.m == nil {
				k.m = map[K]*atomic.Uint64{}
			}
			v = new(atomic.Uint64)
			k.m[key] = v
		}
		k.mu.Unlock()
	}
	v.Add(1)
}

// each calls f with every key's count.
func (k *keyedCounts[K]) each(f func(K, uint64)) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for key, v := range k.m {
		f(key, v.Load())
	}
}

func newCounters() *counters {
	return &counters{hosts: map[hostKey]*hostCounters{}, stripeSeed: maphash.MakeSeed()}
}

func (c *counters) host(key hostKey) *hostCounters {
	c.mu.RLock()
	h := c.hosts[key]
	c.mu.RUnlock()
	if h != nil {
		return h
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h = c.hosts[key]; h != nil {
		return h
	}
	if len(c.hosts) >= maxHosts {
		key = otherHosts
		if h = c.hosts[key]; h != nil {
			return h
		}
	}
	h = &hostCounters{}
	c.hosts[key] = h
	return h
}

// query counts one query from a host.
func (c *counters) query(h *hostCounters, addr netip.Addr, src Source, qtype uint16, dns64 bool) {
	c.queries.Add(1)
	c.byType[min(int(qtype), 256)].Add(1)
	c.bySource.add(src)
	// Written only when they change: a store on every query would move
	// the cache line between the cores for nothing.
	if last := h.lastAddr.Load(); last == nil || *last != addr {
		a := new(netip.Addr)
		*a = addr
		h.lastAddr.Store(a)
	}
	if h.dns64.Load() != dns64 {
		h.dns64.Store(dns64)
	}
	h.queries.Add(1)
	h.byType.add(qtype)
	h.bySource.add(src)
}

// finished counts an answer by its RCODE and TC bit.
func (c *counters) finished(rcode int, truncated bool) {
	if truncated {
		c.truncated.Add(1)
	}
	switch rcode {
	case dns.RcodeServerFailure:
		c.servfail.Add(1)
	case dns.RcodeNameError:
		c.nxdomain.Add(1)
	case dns.RcodeRefused:
		c.refused.Add(1)
	case dns.RcodeFormatError, dns.RcodeNotImplemented, dns.RcodeBadVers:
		c.malformed.Add(1)
	}
}

// synthesizedFor counts a synthesized answer for name.
func (c *counters) synthesizedFor(h *hostCounters, name string) {
	c.synthesized.Add(1)
	h.synthesized.Add(1)
	st := &h.top[maphash.String(c.stripeSeed, name)%topStripes]
	st.mu.Lock()
	st.names.count(name, topNTracked/topStripes)
	st.mu.Unlock()
}

// topNames is a top list of synthesized names, kept with the space-saving
// algorithm (Metwally et al.): at most a fixed number of names, where a new
// name evicts the least counted one and inherits its count, so heavy
// hitters are never lost. The names sit in a min-heap ordered by (count,
// name), so that the eviction victim is at the root: a host that asks for
// many different IPv4-only names evicts on most queries, and a scan of all
// tracked names each time was a visible share of the CPU per query.
type topNames struct {
	heap []NameCount
	at   map[string]int // name → index in heap
}

// count counts name, keeping at most tracked names.
func (t *topNames) count(name string, tracked int) {
	if i, ok := t.at[name]; ok {
		t.heap[i].Count++
		t.down(i)
		return
	}
	if t.at == nil {
		t.at = make(map[string]int, tracked)
	}
	if len(t.heap) < tracked {
		t.heap = append(t.heap, NameCount{Name: name, Count: 1})
		t.at[name] = len(t.heap) - 1
		t.up(len(t.heap) - 1)
		return
	}
	delete(t.at, t.heap[0].Name)
	t.heap[0] = NameCount{Name: name, Count: t.heap[0].Count + 1}
	t.at[name] = 0
	t.down(0)
}

func (t *topNames) less(i, j int) bool {
	a, b := t.heap[i], t.heap[j]
	return a.Count < b.Count || a.Count == b.Count && a.Name < b.Name
}

func (t *topNames) swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.at[t.heap[i].Name] = i
	t.at[t.heap[j].Name] = j
}

func (t *topNames) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !t.less(i, parent) {
			return
		}
		t.swap(i, parent)
		i = parent
	}
}

func (t *topNames) down(i int) {
	for {
		least := i
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(t.heap) && t.less(c, least) {
				least = c
			}
		}
		if least == i {
			return
		}
		t.swap(i, least)
		i = least
	}
}

func (c *counters) snapshot() Stats {
	st := Stats{
		Queries: c.queries.Load(),
		Fairness: FairnessDrops{
			LongestQueue:  c.longestQueue.Load(),
			UpstreamShare: c.upstreamShare.Load(),
			Steered:       c.steered.Load(),
			TCPRefused:    c.tcpRefused.Load(),
		},
		Overloaded:  c.overloaded.Load(),
		Malformed:   c.malformed.Load(),
		Refused:     c.refused.Load(),
		ServFail:    c.servfail.Load(),
		NXDomain:    c.nxdomain.Load(),
		Synthesized: c.synthesized.Load(),
		Excluded:    c.excluded.Load(),
		Local:       c.local.Load(),
		Truncated:   c.truncated.Load(),
		CacheHits:   c.cacheHits.Load(),
		CacheMisses: c.cacheMisses.Load(),
		BySource:    map[Source]uint64{},
		ByType:      map[string]uint64{},
		Hosts:       map[string]HostStats{},
	}
	for i := range c.byType {
		if v := c.byType[i].Load(); v > 0 {
			name := "OTHER" // the slot of all types ≥ 256
			if i < 256 {
				name = typeName(uint16(i))
			}
			st.ByType[name] += v
		}
	}
	c.bySource.each(func(s Source, v uint64) { st.BySource[s] = v })
	c.mu.RLock()
	defer c.mu.RUnlock()
	for hk, h := range c.hosts {
		st.Hosts[hk.String()] = h.snapshot(hk.String())
	}
	return st
}

func (h *hostCounters) snapshot(key string) HostStats {
	hs := HostStats{
		Host: key, DNS64: h.dns64.Load(), Queries: h.queries.Load(), Synthesized: h.synthesized.Load(),
		ByType: map[string]uint64{}, BySource: map[Source]uint64{},
	}
	if a := h.lastAddr.Load(); a != nil {
		hs.LastAddr = *a
	}
	h.byType.each(func(t uint16, v uint64) { hs.ByType[typeName(t)] += v })
	h.bySource.each(func(s Source, v uint64) { hs.BySource[s] = v })
	for i := range h.top {
		st := &h.top[i]
		st.mu.Lock()
		hs.TopSynthesized = append(hs.TopSynthesized, st.names.heap...)
		st.mu.Unlock()
	}
	sort.Slice(hs.TopSynthesized, func(i, j int) bool {
		a, b := hs.TopSynthesized[i], hs.TopSynthesized[j]
		return a.Count > b.Count || a.Count == b.Count && a.Name < b.Name
	})
	if len(hs.TopSynthesized) > topNShown {
		hs.TopSynthesized = hs.TopSynthesized[:topNShown]
	}
	return hs
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "OTHER"
}
