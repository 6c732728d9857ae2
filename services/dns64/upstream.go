package dns64

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// ExchangeFunc sends one query to one upstream and returns its answer. The
// default uses UDP and retries over TCP when the answer is truncated.
type ExchangeFunc func(ctx context.Context, m *dns.Msg, upstream netip.AddrPort) (*dns.Msg, error)

// upstreamPayload is the EDNS0 size we offer upstream: the 2020 DNS flag
// day value, which avoids IP fragmentation.
const upstreamPayload = 1232

func defaultExchange(ctx context.Context, m *dns.Msg, upstream netip.AddrPort) (*dns.Msg, error) {
	addr := upstream.String()
	udp := &dns.Client{Net: "udp", UDPSize: upstreamPayload}
	r, _, err := udp.ExchangeContext(ctx, m, addr)
	if err != nil {
		return nil, err
	}
	if r.Truncated {
		tcp := &dns.Client{Net: "tcp"}
		r, _, err = tcp.ExchangeContext(ctx, m, addr)
		if err != nil {
			return nil, fmt.Errorf("tcp retry after TC: %w", err)
		}
	}
	return r, nil
}

// upstreamHealth is what the forwarder remembers about one upstream.
type upstreamHealth struct {
	failures  int       // consecutive timeouts or network errors
	downUntil time.Time // skip it until then, unless all are down
	queries   uint64
	errors    uint64
	lastErr   string
}

// forwarder sends queries to the plan's upstreams in order of preference.
// An upstream that times out is skipped for a backoff that doubles with each
// failure (1 s up to 30 s); after that the preferred one is tried again
// first, so the service returns to it once it recovers.
type forwarder struct {
	exchange ExchangeFunc
	attempt  time.Duration // per upstream try

	mu     sync.Mutex
	health map[netip.AddrPort]*upstreamHealth
}

func newForwarder(ex ExchangeFunc, attempt time.Duration) *forwarder {
	return &forwarder{exchange: ex, attempt: attempt, health: map[netip.AddrPort]*upstreamHealth{}}
}

var errNoUpstream = errors.New("no upstream resolver")

// order returns the upstreams to try: the ones not in backoff in the plan's
// order, then the ones in backoff, soonest back first.
func (f *forwarder) order(ups []netip.AddrPort, now time.Time) []netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	var up, down []netip.AddrPort
	for _, u := range ups {
		h := f.health[u]
		if h == nil {
			h = &upstreamHealth{}
			f.health[u] = h
		}
		if now.Before(h.downUntil) {
			down = append(down, u)
		} else {
			up = append(up, u)
		}
	}
	for i := 1; i < len(down); i++ { // insertion sort: a handful of entries
		for j := i; j > 0 && f.health[down[j]].downUntil.Before(f.health[down[j-1]].downUntil); j-- {
			down[j], down[j-1] = down[j-1], down[j]
		}
	}
	return append(up, down...)
}

func (f *forwarder) record(u netip.AddrPort, err error, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.health[u]
	if h == nil {
		h = &upstreamHealth{}
		f.health[u] = h
	}
	h.queries++
	if err == nil {
		h.failures = 0
		h.downUntil = time.Time{}
		return
	}
	h.errors++
	h.failures++
	h.lastErr = err.Error()
	backoff := time.Second << min(h.failures-1, 5)
	h.downUntil = now.Add(min(backoff, 30*time.Second))
}

// forward resolves q through the upstreams. A SERVFAIL or REFUSED answer
// moves on to the next upstream without marking the first one unhealthy
// (it may be this name only); timeouts and network errors do mark it.
func (f *forwarder) forward(ctx context.Context, ups []netip.AddrPort, q *dns.Msg) (*dns.Msg, error) {
	if len(ups) == 0 {
		return nil, errNoUpstream
	}
	var last *dns.Msg
	err := errNoUpstream
	for _, u := range f.order(ups, time.Now()) {
		if ctx.Err() != nil {
			break
		}
		actx, cancel := context.WithTimeout(ctx, f.attempt)
		r, xerr := f.exchange(actx, q, u)
		cancel()
		if xerr == nil {
			xerr = matches(q, r)
		}
		f.record(u, xerr, time.Now())
		if xerr != nil {
			err = fmt.Errorf("upstream %s: %w", u, xerr)
			continue
		}
		if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			last = r
			continue
		}
		return r, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, err
}

// matches checks that r answers q: the ID is checked by the client, but an
// answer to another question (a spoofed or confused one) must never reach
// the cache (RFC 5452 §4.1 ties an answer to ID, port and question).
func matches(q, r *dns.Msg) error {
	if !r.Response {
		return errors.New("reply without QR")
	}
	if len(r.Question) != 1 {
		return fmt.Errorf("reply with %d questions", len(r.Question))
	}
	a, b := q.Question[0], r.Question[0]
	if a.Qtype != b.Qtype || a.Qclass != b.Qclass || !strings.EqualFold(a.Name, b.Name) {
		return fmt.Errorf("reply to %s %s, asked %s %s", b.Name, dns.TypeToString[b.Qtype], a.Name, dns.TypeToString[a.Qtype])
	}
	return nil
}

// UpstreamStats is one upstream's health as seen by the forwarder.
type UpstreamStats struct {
	Addr      netip.AddrPort
	Healthy   bool
	Queries   uint64
	Errors    uint64
	LastError string
}

func (f *forwarder) stats(ups []netip.AddrPort, now time.Time) []UpstreamStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []UpstreamStats
	for _, u := range ups {
		st := UpstreamStats{Addr: u, Healthy: true}
		if h := f.health[u]; h != nil {
			st.Healthy = !now.Before(h.downUntil)
			st.Queries, st.Errors, st.LastError = h.queries, h.errors, h.lastErr
		}
		out = append(out, st)
	}
	return out
}
