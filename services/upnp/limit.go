package upnp

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"codeberg.org/monostack/gizmo/internal/boundedhttp"
)

// Limits bound what one client, or all of them, can make the service do.
type Limits struct {
	// Bounds cap the open HTTP connections and time each phase of one.
	boundedhttp.Bounds
	// Requests and RequestBurst are each client address's token bucket
	// for HTTP requests, AllRequests and AllRequestBurst everyone's
	// together; Searches and the rest the same for SSDP searches.
	Requests, AllRequests         rate.Limit
	RequestBurst, AllRequestBurst int
	Searches, AllSearches         rate.Limit
	SearchBurst, AllSearchBurst   int
	// Clients is how many client addresses the buckets track; the least
	// recently seen one is forgotten first.
	Clients int
	// PendingReplies caps the search answers waiting for their delay.
	PendingReplies int
}

// DefaultLimits suit a home network: an app asks for a few pinholes at
// start and renews them now and then.
var DefaultLimits = Limits{
	Bounds: boundedhttp.Bounds{
		MaxConns:          16,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
	},
	Requests:        2,
	RequestBurst:    20,
	AllRequests:     20,
	AllRequestBurst: 100,
	Searches:        1,
	SearchBurst:     10,
	AllSearches:     20,
	AllSearchBurst:  100,
	Clients:         256,
	PendingReplies:  64,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	l.Bounds = l.Bounds.WithDefaults(d.Bounds)
	for _, f := range []struct{ v, def *int }{
		{&l.RequestBurst, &d.RequestBurst}, {&l.AllRequestBurst, &d.AllRequestBurst},
		{&l.SearchBurst, &d.SearchBurst}, {&l.AllSearchBurst, &d.AllSearchBurst},
		{&l.Clients, &d.Clients}, {&l.PendingReplies, &d.PendingReplies},
	} {
		boundedhttp.OrDefault(f.v, *f.def)
	}
	for _, f := range []struct{ v, def *rate.Limit }{
		{&l.Requests, &d.Requests}, {&l.AllRequests, &d.AllRequests},
		{&l.Searches, &d.Searches}, {&l.AllSearches, &d.AllSearches},
	} {
		boundedhttp.OrDefault(f.v, *f.def)
	}
	return l
}

// buckets are token buckets per client address and one for everyone.
// Safe for concurrent use.
type buckets struct {
	every rate.Limit
	burst int
	max   int

	mu      sync.Mutex
	all     *rate.Limiter
	clients map[netip.Addr]*bucket
	evicted uint64
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

func newBuckets(every rate.Limit, burst int, all rate.Limit, allBurst, max int) *buckets {
	return &buckets{every: every, burst: burst, max: max, all: rate.NewLimiter(all, allBurst), clients: map[netip.Addr]*bucket{}}
}

// allow takes a token from a's bucket and from everyone's; false when
// either is empty. A client whose own bucket is empty takes nothing from
// everyone's, so that one flooding host does not starve the others.
func (b *buckets) allow(a netip.Addr, now time.Time) bool {
	a = a.WithZone("")
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.clients[a]
	if !ok {
		if len(b.clients) >= b.max {
			b.evictOldest()
		}
		c = &bucket{lim: rate.NewLimiter(b.every, b.burst)}
		b.clients[a] = c
	}
	c.used = now
	if !c.lim.AllowN(now, 1) {
		return false
	}
	return b.all.AllowN(now, 1)
}

// evictOldest forgets the least recently seen client. b.mu is held; a
// linear scan is cheap at the few hundred clients kept.
func (b *buckets) evictOldest() {
	var oldest netip.Addr
	var at time.Time
	for a, c := range b.clients {
		if !oldest.IsValid() || c.used.Before(at) {
			oldest, at = a, c.used
		}
	}
	delete(b.clients, oldest)
	b.evicted++
}

// evictions is how many clients were forgotten to make room.
func (b *buckets) evictions() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.evicted
}
