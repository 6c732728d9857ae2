// Package dns64 is the gizmo's LAN resolver: a forwarding, caching DNS
// server that synthesizes AAAA records for IPv4-only names (RFC 6147) for
// the hosts whose policy asks for it, answers ipv4only.arpa (RFC 8880),
// home.arpa (RFC 8375) and the NAT64 prefix's reverse zone itself, and
// counts per host which names still need IPv4 and which information source
// (RDNSS, DHCPv6, DHCPv4) gave the host its resolver address.
package dns64

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Config holds what does not change while the service runs.
type Config struct {
	Logger *slog.Logger
	// CacheBytes bounds the cache's memory (estimate); default 16 MiB.
	CacheBytes int
	// UpstreamTimeout is how long one upstream gets to answer (default
	// 800 ms); QueryTimeout bounds one lookup across all upstreams (default
	// 2 s), after which the client gets SERVFAIL, before its own retry
	// timer fires (RFC 1536 §1: stub retransmissions are seconds apart).
	UpstreamTimeout time.Duration
	QueryTimeout    time.Duration
	// Exchange replaces the network exchange with upstreams (tests).
	Exchange ExchangeFunc
	// UDPSockets is the number of SO_REUSEPORT sockets per UDP listening
	// address, so that the kernel spreads queries over cores; default
	// GOMAXPROCS.
	UDPSockets int
}

// Service is the DNS64 resolver. It is a dns.Handler; Run serves it on the
// plan's addresses.
type Service struct {
	log    *slog.Logger
	cfg    Config
	plan   atomic.Pointer[compiledPlan]
	replan chan struct{}
	cache  *cache
	fwd    *forwarder
	shares *upstreamShares
	flight singleflight.Group
	counts *counters
	memo   *answerMemo
	// upstreamSlots bounds the UDP queries waiting for an upstream.
	upstreamSlots chan struct{}
}

// memoEntryCost sizes the memo: one entry per this many bytes of
// CacheBytes. An entry really takes about 300 bytes (a typical answer of
// 50-150 bytes, its key, the entry and the map's share), so the memo adds
// about a third to the cache's memory at most (16,384 entries for the
// default 16 MiB), and holds the hot answers of a home network.
const memoEntryCost = 1024

// maxWaitingQueries is how many UDP queries may wait for upstreams at once.
const maxWaitingQueries = 1024

// maxUpstreamShare is how many of them one client may hold: at a typical
// upstream round trip of 20 ms, 25,000 new names a second, and at least
// half the room is left to the others.
const maxUpstreamShare = maxWaitingQueries / 2

// New returns a service with an empty plan: it answers local names but has
// no upstreams and no listeners until the first Update.
func New(cfg Config) (*Service, error) {
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = 16 << 20
	}
	if cfg.CacheBytes < 64<<10 {
		return nil, fmt.Errorf("dns64: cache of %d bytes is too small (minimum 64 KiB)", cfg.CacheBytes)
	}
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = 800 * time.Millisecond
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 2 * time.Second
	}
	if cfg.Exchange == nil {
		cfg.Exchange = defaultExchange
	}
	if cfg.UDPSockets <= 0 {
		cfg.UDPSockets = runtime.GOMAXPROCS(0)
	}
	s := &Service{
		log:    svclog.For(cfg.Logger, "dns64"),
		cfg:    cfg,
		replan: make(chan struct{}, 1),
		cache:  newCache(cfg.CacheBytes),
		fwd:    newForwarder(cfg.Exchange, cfg.UpstreamTimeout),
		shares: newUpstreamShares(maxUpstreamShare),
		counts: newCounters(),
		memo:   newAnswerMemo(cfg.CacheBytes / memoEntryCost),

		upstreamSlots: make(chan struct{}, maxWaitingQueries),
	}
	cp, _ := compile(Plan{DefaultDNS64: true})
	s.plan.Store(cp)
	return s, nil
}

// Update installs a new plan; queries arriving after it returns use it (a
// policy change takes effect at once), and Run re-listens if the addresses
// changed. An invalid plan is logged and ignored, keeping the previous one.
func (s *Service) Update(p Plan) {
	cp, err := compile(p)
	if err != nil {
		s.log.Error("dns64: ignoring invalid plan", "err", err)
		return
	}
	s.plan.Store(cp)
	select {
	case s.replan <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	st := s.counts.snapshot()
	st.CacheEntries, st.CacheBytes = s.cache.size()
	st.MemoEntries = s.memo.size()
	st.CacheMaxBytes = s.cfg.CacheBytes
	st.Upstreams = s.fwd.stats(s.plan.Load().Upstreams, time.Now())
	return st
}

// lookup returns the upstream answer for (name, qtype) from the cache or,
// unless pass limits it to the cache, the upstreams. The returned message
// is shared and must not be modified; age is how long it has been cached,
// in whole ticks of the cache's clock, to subtract from its TTLs.
func (s *Service) lookup(ctx context.Context, pass *queryPass, p *compiledPlan, name string, qtype uint16, do, cd bool) (*dns.Msg, time.Duration, error) {
	k := cacheKey{name: name, qtype: qtype, do: do, cd: cd}
	now := pass.clock()
	if m, age, expires, ok := s.cache.get(k, now); ok {
		if !pass.quiet() {
			s.counts.cacheHits.Add(1)
		}
		pass.cacheHit(s.cache.tick(now), expires)
		return m, age, nil
	}
	if pass != nil && pass.cacheOnly {
		pass.missed = true
		return nil, 0, errWouldBlock
	}
	s.counts.cacheMisses.Add(1)
	// Identical concurrent misses share one upstream query.
	flightKey := fmt.Sprintf("%s/%d/%t/%t", name, qtype, do, cd)
	ch := s.flight.DoChan(flightKey, func() (any, error) {
		// Detached from the first asker's context: others may still wait.
		qctx, cancel := context.WithTimeout(context.Background(), s.cfg.QueryTimeout)
		defer cancel()
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		q.RecursionDesired = true
		q.CheckingDisabled = cd
		q.SetEdns0(upstreamPayload, do)
		r, err := s.fwd.forward(qctx, p.Upstreams, q)
		if err != nil {
			return nil, err
		}
		r = sanitizeUpstream(r, q)
		s.cache.put(k, r, cacheTTL(r), time.Now())
		return r, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, 0, res.Err
		}
		return res.Val.(*dns.Msg), 0, nil
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("dns64: lookup %s/%s: %w", name, dns.TypeToString[qtype], ctx.Err())
	}
}

// sanitizeUpstream keeps what is safe to cache and hand out: the OPT record
// is hop-by-hop (RFC 6891 §6.1.1) and is dropped, and so are records of a
// class other than IN, which a forwarder for IN queries never needs.
func sanitizeUpstream(r, q *dns.Msg) *dns.Msg {
	out := &dns.Msg{MsgHdr: r.MsgHdr, Question: q.Question}
	out.Answer = slices.DeleteFunc(slices.Clone(r.Answer), func(rr dns.RR) bool { return rr.Header().Class != dns.ClassINET })
	out.Ns = slices.DeleteFunc(slices.Clone(r.Ns), func(rr dns.RR) bool { return rr.Header().Class != dns.ClassINET })
	out.Extra = slices.DeleteFunc(slices.Clone(r.Extra), func(rr dns.RR) bool {
		return rr.Header().Rrtype == dns.TypeOPT || rr.Header().Class != dns.ClassINET
	})
	return out
}

// current returns the plan in force.
func (s *Service) current() *compiledPlan { return s.plan.Load() }

var _ dns.Handler = (*Service)(nil)
