package dns64

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cacheKey identifies one upstream answer. The DO and CD bits are part of
// the key because they change what the upstream returns (RRSIGs, and
// answers that failed validation).
type cacheKey struct {
	name  string // canonical (lower case, fully qualified)
	qtype uint16
	do    bool
	cd    bool
}

// cacheEntry is one cached upstream response. msg is never modified after it
// is stored: readers copy the records they hand out.
type cacheEntry struct {
	key        cacheKey
	msg        *dns.Msg
	stored     int64 // tick (see cache.tick) it was stored in
	expires    int64 // first tick it may no longer be used in
	cost       int
	prev, next *cacheEntry
}

const cacheShards = 16

// cache is a memory-bounded LRU of upstream answers, positive and negative
// (RFC 2308), shared by all clients. It is split into shards so that
// concurrent queries for different names rarely wait for each other.
//
// Ages count whole seconds of one clock, the cache's ticks, as unbound
// counts them: every cached record's TTL drops by one at the same instant.
// The memo relies on that to age its packed answers in place (an answer
// made of two cached responses, such as a synthesized AAAA capped by the
// negative answer's SOA, then ages in one step). The ticks follow the
// monotonic clock, so a wall-clock step (a Pi without a real-time clock
// setting its time from NTP) neither expires nor prolongs anything.
type cache struct {
	seed   maphash.Seed
	epoch  time.Time // tick 0
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu       sync.Mutex
	entries  map[cacheKey]*cacheEntry
	head     cacheEntry // sentinel: head.next is the most recently used
	bytes    int
	maxBytes int
}

func newCache(maxBytes int) *cache {
	c := &cache{seed: maphash.MakeSeed(), epoch: time.Now()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.entries = map[cacheKey]*cacheEntry{}
		sh.head.next, sh.head.prev = &sh.head, &sh.head
		sh.maxBytes = maxBytes / cacheShards
	}
	return c
}

func (c *cache) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, k.name)%cacheShards]
}

// tick is the whole second of the cache's clock that now falls in.
func (c *cache) tick(now time.Time) int64 {
	d := now.Sub(c.epoch)
	t := int64(d / time.Second)
	if d < 0 && d%time.Second != 0 {
		t-- // round down, also before the epoch (tests use fixed times)
	}
	return t
}

// at is the instant tick t begins.
func (c *cache) at(t int64) time.Time { return c.epoch.Add(time.Duration(t) * time.Second) }

// get returns the cached response, its age in whole ticks and the instant
// it expires.
func (c *cache) get(k cacheKey, now time.Time) (*dns.Msg, time.Duration, time.Time, bool) {
	t := c.tick(now)
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.entries[k]
	if !ok {
		return nil, 0, time.Time{}, false
	}
	if t >= e.expires {
		sh.remove(e)
		return nil, 0, time.Time{}, false
	}
	sh.unlink(e)
	sh.pushFront(e)
	return e.msg, time.Duration(t-e.stored) * time.Second, c.at(e.expires), true
}

// put stores m for ttl, counted from the start of now's tick (so it may
// live up to a second less than ttl, never more). Entries are charged an
// estimate of their in-memory size, several times their wire size, so that
// the bound holds for RSS.
func (c *cache) put(k cacheKey, m *dns.Msg, ttl time.Duration, now time.Time) {
	if ttl <= 0 {
		return
	}
	cost := 3*m.Len() + 256 + len(k.name)
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if cost > sh.maxBytes {
		return
	}
	if old, ok := sh.entries[k]; ok {
		sh.remove(old)
	}
	t := c.tick(now)
	e := &cacheEntry{key: k, msg: m, stored: t, expires: t + int64((ttl+time.Second-1)/time.Second), cost: cost}
	sh.entries[k] = e
	sh.pushFront(e)
	sh.bytes += cost
	for sh.bytes > sh.maxBytes {
		sh.remove(sh.head.prev) // least recently used
	}
}

func (c *cache) size() (entries, bytes int) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		entries += len(sh.entries)
		bytes += sh.bytes
		sh.mu.Unlock()
	}
	return entries, bytes
}

func (sh *cacheShard) unlink(e *cacheEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
}

func (sh *cacheShard) pushFront(e *cacheEntry) {
	e.prev = &sh.head
	e.next = sh.head.next
	sh.head.next.prev = e
	sh.head.next = e
}

func (sh *cacheShard) remove(e *cacheEntry) {
	sh.unlink(e)
	delete(sh.entries, e.key)
	sh.bytes -= e.cost
}

// Cache lifetimes: RFC 2308 §5 suggests capping negative caching at one to
// three hours; positive answers are capped at a day so that a bad record
// cannot stick for a week.
const (
	maxPositiveTTL = 24 * time.Hour
	maxNegativeTTL = 3 * time.Hour
)

// cacheTTL returns how long m may be cached, 0 when it must not be.
func cacheTTL(m *dns.Msg) time.Duration {
	if m.Truncated {
		return 0
	}
	switch m.Rcode {
	case dns.RcodeSuccess:
		if len(m.Answer) == 0 {
			return negativeTTL(m)
		}
		ttl := uint32(1<<32 - 1)
		for _, rr := range m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return min(time.Duration(ttl)*time.Second, maxPositiveTTL)
	case dns.RcodeNameError:
		return negativeTTL(m)
	}
	return 0
}

// negativeTTL is the RFC 2308 §5 lifetime of a negative answer: the minimum
// of the SOA's TTL and its MINIMUM field. Without an SOA the answer is not
// cached (RFC 2308 §5: "SHOULD NOT be cached").
func negativeTTL(m *dns.Msg) time.Duration {
	soa := findSOA(m)
	if soa == nil {
		return 0
	}
	return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, maxNegativeTTL)
}

func findSOA(m *dns.Msg) *dns.SOA {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}
