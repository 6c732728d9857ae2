package dns64

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// noSOATTL caps synthesized TTLs when the negative AAAA answer carried no
// SOA (RFC 6147 §5.1.7).
const noSOATTL = 600

type lookupResult struct {
	msg *dns.Msg
	age time.Duration
	err error
}

// synthesize answers an AAAA query for a DNS64 client (RFC 6147 §5.1).
func (s *Service) synthesize(ctx context.Context, pass *queryPass, p *compiledPlan, m *dns.Msg, name string, do, cd bool, hc *hostCounters) {
	// When the AAAA answer is not cached, ask for the A record at the same
	// time (RFC 6147 §5.1.8 allows it): a cache miss then costs one round
	// trip, not two, and hosts ask for the A record anyway.
	var aCh chan lookupResult
	if pass != nil && pass.cacheOnly {
		// The first, cache-only pass: no parallel query.
	} else if _, _, _, ok := s.cache.get(cacheKey{name: name, qtype: dns.TypeAAAA, do: do, cd: cd}, pass.clock()); !ok {
		aCh = make(chan lookupResult, 1)
		go func() {
			msg, age, err := s.lookup(ctx, pass, p, name, dns.TypeA, do, cd)
			aCh <- lookupResult{msg, age, err}
		}()
	}
	aaaa, aaaaAge, aaaaErr := s.lookup(ctx, pass, p, name, dns.TypeAAAA, do, cd)

	var filtered []dns.RR
	if aaaaErr == nil {
		var real, dropped int
		filtered, real, dropped = s.filterExcluded(pass, p, aaaa.Answer)
		switch {
		case aaaa.Rcode == dns.RcodeNameError:
			// RFC 6147 §5.1.2: NXDOMAIN is passed on as it is.
			copyAnswer(m, aaaa, aaaaAge, do)
			return
		case aaaa.Rcode == dns.RcodeSuccess && real > 0:
			// RFC 6147 §5.1.4: real AAAA records win; excluded ones never
			// reach the client.
			copyAnswer(m, aaaa, aaaaAge, do)
			if dropped > 0 {
				m.Answer = aged(filtered, aaaaAge)
			}
			return
		}
		// Empty (NODATA), only excluded addresses, or an RCODE other than
		// NXDOMAIN (RFC 6147 §5.1.2): treat as empty and try the A record.
	}
	// An AAAA lookup that timed out counts as empty too (RFC 6147 §5.1.3).

	var a lookupResult
	if aCh != nil {
		select {
		case a = <-aCh:
		default:
			select {
			case a = <-aCh:
			case <-ctx.Done():
				a.err = ctx.Err()
			}
		}
	} else {
		a.msg, a.age, a.err = s.lookup(ctx, pass, p, name, dns.TypeA, do, cd)
	}
	if a.err == nil && a.msg.Rcode == dns.RcodeSuccess {
		ttlCap := uint32(noSOATTL)
		if aaaaErr == nil && aaaa.Rcode == dns.RcodeSuccess {
			if soa := findSOA(aaaa); soa != nil {
				// RFC 6147 §5.1.7: no longer than the negative AAAA answer
				// may be cached (its RFC 2308 lifetime, aged).
				ttlCap = min(ageTTL(soa.Hdr.Ttl, aaaaAge), soa.Minttl)
			}
		}
		if answer, ok := synthesizeAnswer(p, a.msg.Answer, a.age, ttlCap); ok {
			m.Rcode = dns.RcodeSuccess
			m.AuthenticatedData = false // RFC 6147 §5.5: synthesized data is not authentic.
			m.Answer = answer
			m.Ns = aged(a.msg.Ns, a.age)
			// RFC 6147 §5.3.2: the additional section passes through.
			m.Extra = aged(a.msg.Extra, a.age)
			s.synthesizedFor(pass, hc, name)
			return
		}
	}

	// Nothing to synthesize from: the client gets the AAAA answer as it was,
	// less excluded records (RFC 6147 §5.1.4, §5.1.6), or SERVFAIL if there was none.
	if aaaaErr != nil {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	copyAnswer(m, aaaa, aaaaAge, do)
	m.Answer = aged(filtered, aaaaAge)
}

// filterExcluded removes AAAA records in excluded ranges (RFC 6147 §5.1.4)
// and reports how many real and excluded AAAA records there were.
func (s *Service) filterExcluded(pass *queryPass, p *compiledPlan, rrs []dns.RR) (kept []dns.RR, real, dropped int) {
	for _, rr := range rrs {
		if aaaa, ok := rr.(*dns.AAAA); ok {
			addr, _ := netip.AddrFromSlice(aaaa.AAAA)
			if p.excluded(addr) {
				dropped++
			} else {
				real++
			}
		}
	}
	if dropped == 0 {
		return rrs, real, 0
	}
	if !pass.quiet() {
		s.counts.excluded.Add(uint64(dropped))
		if pass != nil {
			pass.effects.excluded += uint64(dropped)
		}
	}
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.AAAA:
			addr, _ := netip.AddrFromSlice(rr.AAAA)
			if p.excluded(addr) {
				continue
			}
		case *dns.RRSIG:
			if rr.TypeCovered == dns.TypeAAAA {
				// A signature over a set we just changed would not verify.
				continue
			}
		}
		kept = append(kept, rr)
	}
	return kept, real, dropped
}

// synthesizeAnswer turns the answer section of an A response into the
// answer of a synthesized AAAA response: CNAME and DNAME records stay (RFC
// 6147 §5.1.5: the chain is part of the answer), each A record becomes an
// AAAA record in the NAT64 prefix (RFC 6147 §5.1.7, RFC 6052 §2.2) with TTL
// min(A TTL, ttlCap). Signatures over A records are dropped: they cannot
// cover the synthesized records. ok is false when no A record could be
// mapped.
func synthesizeAnswer(p *compiledPlan, rrs []dns.RR, age time.Duration, ttlCap uint32) (out []dns.RR, ok bool) {
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			v4, valid := netip.AddrFromSlice(rr.A)
			v4 = v4.Unmap()
			if !valid || !mappable(p.Pref64, v4) {
				continue
			}
			v6, err := Embed(p.Pref64, v4)
			if err != nil {
				continue
			}
			out = append(out, &dns.AAAA{
				Hdr: dns.RR_Header{
					Name: rr.Hdr.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET,
					Ttl: min(ageTTL(rr.Hdr.Ttl, age), ttlCap),
				},
				AAAA: v6.AsSlice(),
			})
			ok = true
		case *dns.RRSIG:
			if rr.TypeCovered == dns.TypeA {
				continue
			}
			out = append(out, aged([]dns.RR{rr}, age)...)
		default:
			out = append(out, aged([]dns.RR{rr}, age)...)
		}
	}
	return out, ok
}

func ageTTL(ttl uint32, age time.Duration) uint32 {
	sec := uint32(age / time.Second)
	if ttl > sec {
		return ttl - sec
	}
	return 0
}
