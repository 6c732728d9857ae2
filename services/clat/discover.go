package clat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// WellKnownName is the name whose AAAA records a DNS64 synthesizes from
// its two well-known IPv4 addresses (RFC 7050 §2.2, RFC 8880).
const WellKnownName = "ipv4only.arpa."

// wellKnown4 are ipv4only.arpa's A records (RFC 7050 §2.2).
var wellKnown4 = [2][4]byte{{192, 0, 0, 170}, {192, 0, 0, 171}}

// pref64Lengths are RFC 6052 §2.2's prefix lengths, longest first: a
// synthesized address is searched for a well-known address at each.
var pref64Lengths = []int{96, 64, 56, 48, 40, 32}

// Pref64FromAAAA is RFC 7050 §3: the NAT64 prefixes that the AAAA answers
// for ipv4only.arpa show. Each address is searched for a well-known IPv4
// address at each RFC 6052 length, longest first; the first that holds one
// (with the u octet, bits 64-71, zero) gives the prefix. An address that
// holds none was not synthesized and is ignored. The answers' order is
// kept; duplicates are dropped.
func Pref64FromAAAA(addrs []netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		if !a.Is6() || a.Is4In6() {
			continue
		}
		b := a.As16()
		for _, n := range pref64Lengths {
			v4 := embedded4(b, n)
			if v4 != wellKnown4[0] && v4 != wellKnown4[1] {
				continue
			}
			if b[8] != 0 {
				continue // RFC 6052 §2.2: the u octet is zero
			}
			p := netip.PrefixFrom(a, n).Masked()
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
			break
		}
	}
	return out
}

// embedded4 reads the IPv4 address a prefix of length n embeds (RFC 6052
// §2.2, Figure 1): the four bytes after the prefix, skipping the u octet
// (byte 8).
func embedded4(b [16]byte, n int) [4]byte {
	var v [4]byte
	pos := n / 8
	for i := range v {
		if pos == 8 {
			pos++
		}
		v[i] = b[pos]
		pos++
	}
	return v
}

// Discovered is one round of RFC 7050 discovery.
type Discovered struct {
	// Prefix is the NAT64 prefix found, valid until ValidUntil (the
	// answer's TTL). Invalid with None or Err.
	Prefix     netip.Prefix
	ValidUntil time.Time
	// None: a resolver answered, and there is no DNS64 behind it (no
	// AAAA for ipv4only.arpa, or none synthesized).
	None bool
	// Err: no resolver gave an answer (timeouts, SERVFAIL).
	Err error
	// Resolver gave the answer; At is when.
	Resolver netip.AddrPort
	At       time.Time
}

// DiscoveryPlan is what the daemon asks of discovery
// (gizmo/plan.Discovery).
type DiscoveryPlan struct {
	// Resolvers are the upstream resolvers to ask, in order. Empty:
	// discovery is off.
	Resolvers []netip.AddrPort
	// LinkUp is when the uplink last came up: a new value asks again at
	// once, as the line may be another one now.
	LinkUp time.Time
}

func (p DiscoveryPlan) equal(q DiscoveryPlan) bool {
	return slices.Equal(p.Resolvers, q.Resolvers) && p.LinkUp.Equal(q.LinkUp)
}

// Timing of RFC 7050 discovery.
const (
	// RefreshBefore: RFC 7050 §3 repeats the query ten seconds before
	// the answer's TTL runs out.
	RefreshBefore = 10 * time.Second
	// MinRecheck bounds how often a found prefix is asked again, whatever
	// the TTL; the prefix is kept until the next answer had time to come.
	MinRecheck = 30 * time.Second
	// MaxRecheck bounds how long a found prefix is trusted.
	MaxRecheck = 24 * time.Hour
	// NoneRecheck is how often a line without DNS64 is asked again:
	// RFC 7050 §3 leaves it to the node; a changed upstream asks at once.
	NoneRecheck = 5 * time.Minute
	// QueryTimeout is the wait for each resolver.
	QueryTimeout = 2 * time.Second
	// retryMax bounds the back-off after failures.
	retryMax = time.Minute
)

// Exchanger sends one DNS query to a resolver (dns.Client in the daemon,
// a fake in tests).
type Exchanger func(ctx context.Context, m *dns.Msg, server netip.AddrPort) (*dns.Msg, error)

// DiscoveryConfig configures discovery.
type DiscoveryConfig struct {
	Logger *slog.Logger
	// OnResult gets every round's result; it must not block.
	OnResult func(Discovered)
	// Exchange replaces the DNS client (tests).
	Exchange Exchanger
	// Now replaces the clock (tests).
	Now func() time.Time
}

// Discovery runs RFC 7050 prefix discovery through the upstream resolvers
// while its plan names some, and again before each answer expires.
type Discovery struct {
	cfg   DiscoveryConfig
	log   *slog.Logger
	plans mailbox.Box[DiscoveryPlan]

	mu    sync.Mutex
	last  Discovered
	stats DiscoveryStats
}

// DiscoveryStats count discovery's rounds by outcome.
type DiscoveryStats struct {
	Found, None, Failed uint64
}

// NewDiscovery returns discovery, stopped until Run.
func NewDiscovery(cfg DiscoveryConfig) *Discovery {
	if cfg.Exchange == nil {
		cfg.Exchange = exchangeUDP
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnResult == nil {
		cfg.OnResult = func(Discovered) {}
	}
	return &Discovery{cfg: cfg, log: svclog.For(cfg.Logger, "clat-discovery")}
}

// Update hands discovery a new plan; it never blocks.
func (d *Discovery) Update(p DiscoveryPlan) { d.plans.Put(p) }

// Stats returns the counters and the newest result.
func (d *Discovery) Stats() (DiscoveryStats, Discovered) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats, d.last
}

// Run asks until ctx is done.
func (d *Discovery) Run(ctx context.Context) error {
	var cur DiscoveryPlan
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	backoff := 2 * time.Second
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.plans.C():
			p, ok := d.plans.Take()
			if !ok || p.equal(cur) {
				continue
			}
			// A changed upstream is asked at once (RFC 7050 §3: the
			// prefix belongs to the network the resolvers are in).
			cur = p
			timer.Stop()
			if len(cur.Resolvers) == 0 {
				continue
			}
		case <-timer.C:
		}
		if len(cur.Resolvers) == 0 {
			continue
		}
		r := d.Discover(ctx, cur.Resolvers)
		if ctx.Err() != nil {
			return nil
		}
		d.mu.Lock()
		d.last = r
		switch {
		case r.Err != nil:
			d.stats.Failed++
		case r.None:
			d.stats.None++
		default:
			d.stats.Found++
		}
		d.mu.Unlock()
		d.cfg.OnResult(r)
		next := d.nextCheck(r, &backoff)
		timer.Reset(next)
	}
}

// nextCheck is when to ask again after r.
func (d *Discovery) nextCheck(r Discovered, backoff *time.Duration) time.Duration {
	switch {
	case r.Err != nil:
		d.log.Warn("NAT64 prefix discovery failed; retrying", "err", r.Err, "in", *backoff)
		next := *backoff
		*backoff = min(2**backoff, retryMax)
		// Jitter, so that a fleet does not retry in step.
		return next + rand.N(next/4+1)
	case r.None:
		*backoff = 2 * time.Second
		return NoneRecheck
	default:
		*backoff = 2 * time.Second
		return max(r.ValidUntil.Sub(r.At)-RefreshBefore, MinRecheck)
	}
}

// Discover asks the resolvers in order until one answers (RFC 7050 §3).
func (d *Discovery) Discover(ctx context.Context, resolvers []netip.AddrPort) Discovered {
	var errs []error
	for _, srv := range resolvers {
		m := new(dns.Msg)
		m.SetQuestion(WellKnownName, dns.TypeAAAA)
		m.RecursionDesired = true
		qctx, cancel := context.WithTimeout(ctx, QueryTimeout)
		resp, err := d.cfg.Exchange(qctx, m, srv)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv, err))
			continue
		}
		r, err := resultOf(resp, d.cfg.Now())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv, err))
			continue
		}
		r.Resolver = srv
		return r
	}
	return Discovered{Err: fmt.Errorf("clat: discovery: %w", errors.Join(errs...)), At: d.cfg.Now()}
}

// resultOf reads a resolver's answer. NXDOMAIN and an answer without a
// synthesized address say there is no DNS64 (RFC 7050 §3); other errors
// say nothing.
func resultOf(resp *dns.Msg, now time.Time) (Discovered, error) {
	r := Discovered{At: now}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return r, fmt.Errorf("rcode %s", dns.RcodeToString[resp.Rcode])
	}
	if resp.Truncated {
		return r, errors.New("truncated answer")
	}
	var addrs []netip.Addr
	ttl := MaxRecheck
	for _, rr := range resp.Answer {
		aaaa, ok := rr.(*dns.AAAA)
		if !ok || !sameName(aaaa.Hdr.Name, WellKnownName) && !chained(resp, aaaa.Hdr.Name) {
			continue
		}
		a, ok := netip.AddrFromSlice(aaaa.AAAA)
		if !ok {
			continue
		}
		if len(Pref64FromAAAA([]netip.Addr{a})) > 0 {
			ttl = min(ttl, time.Duration(aaaa.Hdr.Ttl)*time.Second)
		}
		addrs = append(addrs, a)
	}
	prefixes := Pref64FromAAAA(addrs)
	if len(prefixes) == 0 {
		r.None = true
		return r, nil
	}
	// A CLAT translates with one prefix; the first answer's wins.
	r.Prefix = prefixes[0]
	r.ValidUntil = now.Add(max(ttl, MinRecheck+RefreshBefore+QueryTimeout))
	return r, nil
}

// chained reports whether name is reached from ipv4only.arpa by CNAMEs in
// the answer.
func chained(resp *dns.Msg, name string) bool {
	cur := WellKnownName
	for range 8 {
		next := ""
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CNAME); ok && sameName(c.Hdr.Name, cur) {
				next = c.Target
			}
		}
		if next == "" {
			return false
		}
		if sameName(next, name) {
			return true
		}
		cur = next
	}
	return false
}

func exchangeUDP(ctx context.Context, m *dns.Msg, server netip.AddrPort) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: QueryTimeout}
	resp, _, err := c.ExchangeContext(ctx, m, server.String())
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, server.String())
	}
	return resp, err
}

// sameName compares domain names as DNS does: case-insensitive, with or
// without the final dot.
func sameName(a, b string) bool { return dns.CanonicalName(a) == dns.CanonicalName(b) }
