package dns64

import (
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Stats is a snapshot of the service's counters for the dashboard and
// /metrics. Maps are fresh copies the caller may keep.
type Stats struct {
	Queries     uint64 // queries handled (after rate limiting)
	RateLimited uint64 // queries dropped by the per-client limit
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
	queries, rateLimited, overloaded, malformed, refused, servfail  atomic.Uint64
	nxdomain                                                        atomic.Uint64
	synthesized, excluded, local, truncated, cacheHits, cacheMisses atomic.Uint64
	byType                                                          [257]atomic.Uint64 // index 256: types ≥ 256

	mu       sync.RWMutex
	bySource map[Source]*atomic.Uint64
	hosts    map[hostKey]*hostCounters
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

type hostCounters struct {
	mu          sync.Mutex
	lastAddr    netip.Addr
	dns64       bool
	queries     uint64
	synthesized uint64
	byType      map[uint16]uint64
	bySource    map[Source]uint64
	top         topNames
}

func newCounters() *counters {
	return &counters{bySource: map[Source]*atomic.Uint64{}, hosts: map[hostKey]*hostCounters{}}
}

func (c *counters) source(s Source) *atomic.Uint64 {
	c.mu.RLock()
	v := c.bySource[s]
	c.mu.RUnlock()
	if v != nil {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v = c.bySource[s]; v == nil {
		v = new(atomic.Uint64)
		c.bySource[s] = v
	}
	return v
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
	h = &hostCounters{byType: map[uint16]uint64{}, bySource: map[Source]uint64{}}
	c.hosts[key] = h
	return h
}

// query counts one query from a host.
func (c *counters) query(h *hostCounters, addr netip.Addr, src Source, qtype uint16, dns64 bool) {
	c.queries.Add(1)
	c.byType[min(int(qtype), 256)].Add(1)
	c.source(src).Add(1)
	h.mu.Lock()
	h.lastAddr, h.dns64 = addr, dns64
	h.queries++
	h.byType[qtype]++
	h.bySource[src]++
	h.mu.Unlock()
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
	h.mu.Lock()
	h.synthesized++
	h.top.count(name)
	h.mu.Unlock()
}

// topNames is a host's top list of synthesized names, kept with the
// space-saving algorithm (Metwally et al.): at most topNTracked names, where
// a new name evicts the least counted one and inherits its count, so heavy
// hitters are never lost. The names sit in a min-heap ordered by (count,
// name), so that the eviction victim is at the root: a host that asks for
// many different IPv4-only names evicts on most queries, and a scan of all
// tracked names each time was a visible share of the CPU per query.
type topNames struct {
	heap []NameCount
	at   map[string]int // name → index in heap
}

func (t *topNames) count(name string) {
	if i, ok := t.at[name]; ok {
		t.heap[i].Count++
		t.down(i)
		return
	}
	if t.at == nil {
		t.at = make(map[string]int, topNTracked)
	}
	if len(t.heap) < topNTracked {
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
		Queries:     c.queries.Load(),
		RateLimited: c.rateLimited.Load(),
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
			st.ByType[typeName(uint16(i))] += v
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for s, v := range c.bySource {
		st.BySource[s] = v.Load()
	}
	for hk, h := range c.hosts {
		key := hk.String()
		h.mu.Lock()
		hs := HostStats{
			Host: key, LastAddr: h.lastAddr, DNS64: h.dns64, Queries: h.queries, Synthesized: h.synthesized,
			ByType: map[string]uint64{}, BySource: map[Source]uint64{},
		}
		for t, v := range h.byType {
			hs.ByType[typeName(t)] += v
		}
		for s, v := range h.bySource {
			hs.BySource[s] = v
		}
		hs.TopSynthesized = slices.Clone(h.top.heap)
		h.mu.Unlock()
		sort.Slice(hs.TopSynthesized, func(i, j int) bool {
			a, b := hs.TopSynthesized[i], hs.TopSynthesized[j]
			return a.Count > b.Count || a.Count == b.Count && a.Name < b.Name
		})
		if len(hs.TopSynthesized) > topNShown {
			hs.TopSynthesized = hs.TopSynthesized[:topNShown]
		}
		st.Hosts[key] = hs
	}
	return st
}

func typeName(t uint16) string {
	if t == 256 {
		return "OTHER"
	}
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "OTHER"
}
