package dslite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Bounds of how long a resolved AFTR address is kept before it is asked
// for again: the record's TTL (RFC 1035 §3.2.1), but never less than
// MinRecheck, which would make a zero-TTL record a stream of queries, and
// never more than MaxRecheck, so that an AFTR that moved is found within
// the hour whatever the record said.
const (
	MinRecheck = 30 * time.Second
	MaxRecheck = time.Hour
	// RetryMin and RetryMax bound the back-off after a failed lookup.
	RetryMin = 5 * time.Second
	RetryMax = 5 * time.Minute
	// queryTimeout is one resolver's time to answer.
	queryTimeout = 3 * time.Second
)

// lookupFunc resolves name to an AFTR address and the time the answer
// may be kept.
type lookupFunc func(ctx context.Context, name string, resolvers []netip.AddrPort) (netip.Addr, time.Duration, error)

var errNoAAAA = errors.New("no AAAA record with a global IPv6 address")

// lookupAAAA asks each resolver in turn for the AAAA records of name
// (RFC 6334 §4: the B4 resolves the AFTR-Name to an IPv6 address with
// DNS) and returns the first global unicast address of the first answer
// that has one, with the smallest TTL of the records it took it from.
func lookupAAAA(ctx context.Context, name string, resolvers []netip.AddrPort) (netip.Addr, time.Duration, error) {
	if len(resolvers) == 0 {
		return netip.Addr{}, 0, errors.New("no resolver to ask")
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeAAAA)
	q.RecursionDesired = true
	c := &dns.Client{Timeout: queryTimeout}
	var errs []error
	for _, r := range resolvers {
		if ctx.Err() != nil {
			return netip.Addr{}, 0, ctx.Err()
		}
		resp, _, err := c.ExchangeContext(ctx, q, r.String())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r, err))
			continue
		}
		a, ttl, err := aaaaOf(resp)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r, err))
			continue
		}
		return a, ttl, nil
	}
	return netip.Addr{}, 0, fmt.Errorf("dslite: resolve %s: %w", name, errors.Join(errs...))
}

// aaaaOf picks the AFTR's address out of an answer. The resolver followed
// any CNAME (RFC 1034 §3.6.2), so each AAAA in the answer section is the
// name's; the TTL is the smallest along the chain, since the address is
// only as fresh as every record that led to it.
func aaaaOf(resp *dns.Msg) (netip.Addr, time.Duration, error) {
	if resp.Rcode != dns.RcodeSuccess {
		return netip.Addr{}, 0, fmt.Errorf("rcode %s", dns.RcodeToString[resp.Rcode])
	}
	var ttl uint32 = 1<<32 - 1
	var found netip.Addr
	for _, rr := range resp.Answer {
		ttl = min(ttl, rr.Header().Ttl)
		aaaa, ok := rr.(*dns.AAAA)
		if !ok || found.IsValid() {
			continue
		}
		a, ok := netip.AddrFromSlice(aaaa.AAAA)
		if !ok || !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() || a.IsPrivate() {
			continue
		}
		found = a
	}
	if !found.IsValid() {
		return netip.Addr{}, 0, errNoAAAA
	}
	return found, time.Duration(ttl) * time.Second, nil
}

// recheckAfter is when a resolved address is asked for again.
func recheckAfter(ttl time.Duration) time.Duration {
	return min(max(ttl, MinRecheck), MaxRecheck)
}

// retryAfter is the back-off after n failed lookups in a row (n >= 1).
func retryAfter(n int) time.Duration {
	d := RetryMin
	for i := 1; i < n && d < RetryMax; i++ {
		d *= 2
	}
	return min(d, RetryMax)
}
