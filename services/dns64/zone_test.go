package dns64

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// testZone is a small authoritative server for example.test and a piece of
// in-addr.arpa, with one name for each rule of RFC 6147 the tests check. It
// serves as the upstream both in-process (exchange) and on loopback
// (ServeDNS, for the differential test against BIND).
type testZone struct {
	rrs     map[string][]dns.RR // canonical owner → records
	queries atomic.Int64
}

const testZoneSOA = "example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 900"

// Names whose behaviour is not data: the upstream fails in a given way.
const (
	nameServfailAAAA = "servfail-aaaa.example.test."
	nameRefusedAAAA  = "refused-aaaa.example.test."
	nameFormerrAAAA  = "formerr-aaaa.example.test."
	nameTimeoutAAAA  = "timeout-aaaa.example.test."
	nameTimeout      = "timeout.example.test."
	nameServfail     = "servfail.example.test."
	nameNoSOA        = "nosoa.example.test."
	nameNXAAAA       = "nx-aaaa.example.test."
	nameSecure       = "secure.example.test."
)

func newTestZone() *testZone {
	z := &testZone{rrs: map[string][]dns.RR{}}
	add := func(s string) {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(fmt.Sprintf("test zone: %q: %v", s, err))
		}
		n := dns.CanonicalName(rr.Header().Name)
		z.rrs[n] = append(z.rrs[n], rr)
	}
	for _, s := range []string{
		testZoneSOA,
		"example.test. 3600 IN NS ns.example.test.",
		"ns.example.test. 3600 IN A 192.0.2.53",
		"v4only.example.test. 300 IN A 198.51.100.80",
		"dual.example.test. 300 IN A 203.0.113.10",
		"dual.example.test. 300 IN AAAA 2001:db8:ffff::10",
		"v6only.example.test. 300 IN AAAA 2001:db8:ffff::6",
		"mapped.example.test. 300 IN AAAA ::ffff:198.51.100.80",
		"mapped.example.test. 300 IN A 198.51.100.80",
		"excluded.example.test. 300 IN AAAA 2001:db8:bad::1",
		"excluded.example.test. 300 IN A 198.51.100.81",
		"mixed-excluded.example.test. 300 IN AAAA 2001:db8:bad::2",
		"mixed-excluded.example.test. 300 IN AAAA 2001:db8:ffff::20",
		"mixed-excluded.example.test. 300 IN A 198.51.100.82",
		"chain.example.test. 120 IN CNAME v4only.example.test.",
		"chain2.example.test. 240 IN CNAME chain.example.test.",
		"chain-dual.example.test. 120 IN CNAME dual.example.test.",
		"chain-nx.example.test. 120 IN CNAME missing.example.test.",
		"sub.example.test. 500 IN DNAME other.example.test.",
		"host.other.example.test. 300 IN A 198.51.100.90",
		"multi.example.test. 300 IN A 198.51.100.1",
		"multi.example.test. 300 IN A 198.51.100.2",
		"multi.example.test. 300 IN A 198.51.100.3",
		"short-ttl.example.test. 30 IN A 198.51.100.84",
		"long-ttl.example.test. 86400 IN A 198.51.100.85",
		"zero-ttl.example.test. 0 IN A 198.51.100.86",
		"private.example.test. 300 IN A 10.1.2.3",
		"txt-only.example.test. 300 IN TXT \"no addresses here\"",
		"mx.example.test. 300 IN MX 10 v4only.example.test.",
		"withextra.example.test. 300 IN A 198.51.100.87",
		"servfail-aaaa.example.test. 300 IN A 198.51.100.88",
		"refused-aaaa.example.test. 300 IN A 198.51.100.89",
		"formerr-aaaa.example.test. 300 IN A 198.51.100.91",
		"timeout-aaaa.example.test. 300 IN A 198.51.100.92",
		"nosoa.example.test. 3600 IN A 198.51.100.93",
		"nx-aaaa.example.test. 300 IN A 198.51.100.94",
		"secure.example.test. 300 IN A 198.51.100.95",
		"UPPER.example.test. 300 IN A 198.51.100.96",
		"80.100.51.198.in-addr.arpa. 300 IN PTR v4only.example.test.",
	} {
		add(s)
	}
	for i := range 60 { // an answer too big for 512 bytes, synthesized or not
		add(fmt.Sprintf("big.example.test. 300 IN A 198.51.100.%d", 100+i))
	}
	for i := range 12 {
		add(fmt.Sprintf("bigtxt.example.test. 300 IN TXT \"%s\"", strings.Repeat(string(rune('a'+i)), 200)))
	}
	return z
}

// answer builds the authoritative answer to r, or nil for no answer at all.
func (z *testZone) answer(r *dns.Msg) *dns.Msg {
	z.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	opt := r.IsEdns0()
	do := opt != nil && opt.Do()
	if opt != nil {
		m.SetEdns0(1232, do)
	}
	inZone := dns.IsSubDomain("example.test.", name) || dns.IsSubDomain("100.51.198.in-addr.arpa.", name)
	if !inZone {
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return m
	}
	switch {
	case name == nameTimeout, name == nameTimeoutAAAA && q.Qtype == dns.TypeAAAA:
		return nil
	case name == nameServfail, name == nameServfailAAAA && q.Qtype == dns.TypeAAAA:
		m.Authoritative = false
		m.Rcode = dns.RcodeServerFailure
		return m
	case name == nameRefusedAAAA && q.Qtype == dns.TypeAAAA:
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return m
	case name == nameFormerrAAAA && q.Qtype == dns.TypeAAAA:
		m.Rcode = dns.RcodeNotImplemented
		return m
	case name == nameNXAAAA && q.Qtype == dns.TypeAAAA:
		// A broken server (RFC 6147 §5.1.2 mentions them): NXDOMAIN for
		// AAAA although the name has an A record.
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.negativeSOA()}
		return m
	case name == nameSecure && do:
		m.AuthenticatedData = true
	}
	for hops := 0; hops < 8; hops++ {
		// DNAME substitution (RFC 6672 §2.2).
		if dname, ok := z.dnameFor(name); ok {
			m.Answer = append(m.Answer, dname)
			target := strings.TrimSuffix(name, dname.Hdr.Name) + dname.Target
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: dname.Hdr.Ttl}, Target: target})
			name = target
			continue
		}
		rrs, exists := z.rrs[name]
		if !exists {
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{z.negativeSOA()}
			break
		}
		var cname *dns.CNAME
		found := false
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
				found = true
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if found || cname == nil {
			if !found && name != nameNoSOA {
				m.Ns = []dns.RR{z.negativeSOA()} // NODATA (RFC 2308 §2.2)
			}
			break
		}
		m.Answer = append(m.Answer, dns.Copy(cname))
		name = dns.CanonicalName(cname.Target)
	}
	if dns.CanonicalName(q.Name) == "withextra.example.test." {
		extra, _ := dns.NewRR("ns.example.test. 3600 IN A 192.0.2.53")
		m.Extra = append(m.Extra, extra)
	}
	return m
}

func (z *testZone) dnameFor(name string) (*dns.DNAME, bool) {
	for owner, rrs := range z.rrs {
		if owner == name || !dns.IsSubDomain(owner, name) {
			continue
		}
		for _, rr := range rrs {
			if d, ok := rr.(*dns.DNAME); ok {
				return d, true
			}
		}
	}
	return nil, false
}

// negativeSOA is the SOA of a negative answer, with TTL min(SOA TTL,
// MINIMUM) as RFC 2308 §3 asks of authoritative servers.
func (z *testZone) negativeSOA() dns.RR {
	soa := dns.Copy(z.rrs["example.test."][0]).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}

// ServeDNS serves the zone on a socket, truncating UDP answers.
func (z *testZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	m := z.answer(r)
	if m == nil {
		return
	}
	if w.RemoteAddr().Network() == "udp" {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// exchange is an ExchangeFunc that asks the zone in-process, through the
// wire format, and waits for the context on names that never answer.
func (z *testZone) exchange(ctx context.Context, q *dns.Msg, _ netip.AddrPort) (*dns.Msg, error) {
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	in := new(dns.Msg)
	if err := in.Unpack(wire); err != nil {
		return nil, err
	}
	m := z.answer(in)
	if m == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if wire, err = m.Pack(); err != nil {
		return nil, err
	}
	out := new(dns.Msg)
	return out, out.Unpack(wire)
}
