package dns64

import (
	"context"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Local data lifetimes. Local names change when leases do, so they are kept
// short; ipv4only.arpa never changes (RFC 8880 §7.2).
const (
	localTTL = 60
	// ipv4onlyTTL: RFC 8880 leaves the lifetime open; an hour (BIND 9's
	// choice too) lets RFC 7050 clients notice a new NAT64 prefix soon.
	ipv4onlyTTL = 3600
	// pref64PTRTTL is the lifetime of the CNAME from the NAT64 prefix's
	// reverse zone to in-addr.arpa; it changes only with the prefix. BIND 9
	// uses the same value.
	pref64PTRTTL = 600
)

const ipv4onlyName = "ipv4only.arpa."

// answerLocal answers the names the gizmo owns. It reports false when the
// name is not one of them and must go upstream.
func (s *Service) answerLocal(ctx context.Context, pass *queryPass, p *compiledPlan, m *dns.Msg, name string, qtype uint16, dns64, do, cd bool, hc *hostCounters) bool {
	switch {
	case inZone(ipv4onlyName, name):
		s.answerIPv4Only(pass, p, m, name, qtype, dns64, hc)
		return true
	case inZone(p.localDomain, name):
		if answerLocalName(p, m, name, qtype, dns64) {
			s.synthesizedFor(pass, hc, name)
		}
		return true
	}
	if !strings.HasSuffix(name, ".arpa.") {
		return false
	}
	addr, ok := parseReverse(name)
	if !ok {
		return false
	}
	if host, ok := p.ptrs[name]; ok {
		m.Authoritative = true
		if qtype == dns.TypePTR {
			m.Answer = []dns.RR{&dns.PTR{Hdr: hdr(name, dns.TypePTR, localTTL), Ptr: host}}
		} else {
			m.Ns = []dns.RR{localSOA(reverseZone(addr, p))}
		}
		return true
	}
	// The NAT64 prefix first: it may lie inside a LAN network (the
	// existing-network mode puts it in an on-link /64 of the gizmo's).
	if dns64 && p.Pref64.IsValid() && addr.Is6() && p.Pref64.Contains(addr) {
		s.answerPref64PTR(ctx, pass, p, m, name, addr, qtype, do, cd)
		return true
	}
	for _, n := range p.LocalNetworks {
		if n.Contains(addr) {
			// Reverse names of LAN addresses never leak upstream.
			m.Authoritative = true
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{localSOA(reverseZone(addr, p))}
			return true
		}
	}
	return false
}

// inZone reports whether name is zone or below it. Both are canonical
// (lower case, fully qualified), so this is a suffix test on label
// boundaries, cheaper than dns.IsSubDomain on every query.
func inZone(zone, name string) bool {
	if zone == "." {
		return true
	}
	return name == zone || strings.HasSuffix(name, zone) && name[len(name)-len(zone)-1] == '.'
}

// answerIPv4Only answers ipv4only.arpa locally, as RFC 8880 §7.2 asks of
// DNS64 resolvers: the A records 192.0.0.170 and 192.0.0.171, and for DNS64
// clients AAAA records synthesized from them with the active prefix, which is
// how RFC 7050 clients (CLATs) learn the prefix.
func (s *Service) answerIPv4Only(pass *queryPass, p *compiledPlan, m *dns.Msg, name string, qtype uint16, dns64 bool, hc *hostCounters) {
	m.Authoritative = true
	if name != ipv4onlyName {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{ipv4onlySOA()}
		return
	}
	switch {
	case qtype == dns.TypeA:
		for _, a := range ipv4onlyAddrs {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(name, dns.TypeA, ipv4onlyTTL), A: a.AsSlice()})
		}
	case qtype == dns.TypeAAAA && dns64 && p.Pref64.IsValid():
		for _, a := range ipv4onlyAddrs {
			v6, err := Embed(p.Pref64, a)
			if err != nil {
				continue
			}
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ipv4onlyTTL), AAAA: v6.AsSlice()})
		}
		s.synthesizedFor(pass, hc, name)
	case qtype == dns.TypeSOA:
		m.Answer = []dns.RR{ipv4onlySOA()}
	default:
		m.Ns = []dns.RR{ipv4onlySOA()}
	}
}

func ipv4onlySOA() *dns.SOA {
	// The same SOA as BIND 9's built-in zone (RFC 8880 §7.2 has none).
	return &dns.SOA{
		Hdr: hdr(ipv4onlyName, dns.TypeSOA, 86400),
		Ns:  ipv4onlyName, Mbox: ".",
		Serial: 0, Refresh: 28800, Retry: 7200, Expire: 604800, Minttl: 86400,
	}
}

// answerLocalName answers from the plan's local names (RFC 8375 home.arpa)
// and, for a client with DNS64 on, their synthesized AAAA records; it
// reports whether the answer is synthesized.
func answerLocalName(p *compiledPlan, m *dns.Msg, name string, qtype uint16, dns64 bool) bool {
	m.Authoritative = true
	if name == p.localDomain && qtype == dns.TypeSOA {
		m.Answer = []dns.RR{localSOA(p.localDomain)}
		return false
	}
	addrs, ok := p.names[name]
	if !ok && name != p.localDomain && !hasNamesBelow(p, name) {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{localSOA(p.localDomain)}
		return false
	}
	for _, a := range addrs {
		switch {
		case qtype == dns.TypeA && a.Is4():
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(name, dns.TypeA, localTTL), A: a.AsSlice()})
		case qtype == dns.TypeAAAA && a.Is6() && !a.Is4In6():
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, localTTL), AAAA: a.AsSlice()})
		}
	}
	// RFC 6147 §5.1.1: a name with an AAAA record of its own is never
	// synthesized (the plan gives such names none).
	synthesized := false
	if qtype == dns.TypeAAAA && dns64 && len(m.Answer) == 0 {
		for _, a := range p.synth[name] {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, localTTL), AAAA: a.AsSlice()})
			synthesized = true
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{localSOA(p.localDomain)} // NODATA (RFC 2308 §2.2)
	}
	return synthesized
}

// hasNamesBelow reports whether name is an empty non-terminal, which
// exists and so answers NODATA rather than NXDOMAIN (RFC 8020).
func hasNamesBelow(p *compiledPlan, name string) bool {
	for n := range p.names {
		if n != name && inZone(name, n) {
			return true
		}
	}
	return false
}

// answerPref64PTR answers a reverse lookup of an address in the NAT64 prefix
// with a CNAME to the IPv4 address's in-addr.arpa name, then follows it
// (RFC 6147 §5.3.1).
func (s *Service) answerPref64PTR(ctx context.Context, pass *queryPass, p *compiledPlan, m *dns.Msg, name string, addr netip.Addr, qtype uint16, do, cd bool) {
	v4, err := Extract(p.Pref64, addr)
	if err != nil {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	target, _ := dns.ReverseAddr(v4.String())
	cname := &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, pref64PTRTTL), Target: target}
	m.Answer = []dns.RR{cname}
	if qtype == dns.TypeCNAME {
		return
	}
	up, age, err := s.lookup(ctx, pass, p, target, qtype, do, cd)
	if err != nil {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	m.Rcode = up.Rcode
	m.Answer = append(m.Answer, aged(up.Answer, age)...)
	m.Ns = aged(up.Ns, age)
}

// localSOA is the SOA of a zone the gizmo answers for; its MINIMUM sets how
// long clients cache "no such name" (RFC 2308 §4).
func localSOA(zone string) *dns.SOA {
	return &dns.SOA{
		Hdr: hdr(zone, dns.TypeSOA, localTTL),
		Ns:  "gizmo.home.arpa.", Mbox: "hostmaster.home.arpa.",
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: localTTL,
	}
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// reverseZone names the reverse zone of the local network holding addr,
// rounded out to a label boundary (octets for IPv4, nibbles for IPv6).
func reverseZone(addr netip.Addr, p *compiledPlan) string {
	bits := 0
	for _, n := range p.LocalNetworks {
		if n.Contains(addr) {
			bits = n.Bits()
		}
	}
	if addr.Is4() {
		b := addr.As4()
		labels := []string{}
		for i := 0; i < bits/8; i++ {
			labels = append([]string{strconv.Itoa(int(b[i]))}, labels...)
		}
		return strings.Join(append(labels, "in-addr.arpa."), ".")
	}
	pfx, _ := addr.Prefix(bits / 4 * 4)
	return reverseZone6(pfx)
}

// parseReverse parses a full reverse-mapping name: four decimal labels under
// in-addr.arpa (RFC 1035 §3.5) or 32 nibble labels under ip6.arpa (RFC 3596
// §2.5). Anything else (partial names, zone cuts) is not an address.
func parseReverse(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			if len(l) == 0 || len(l) > 3 || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			v, err := strconv.Atoi(l)
			if err != nil || v > 255 {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		if len(rest) != 63 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i := 0; i < 32; i++ {
			c := rest[2*i]
			if i < 31 && rest[2*i+1] != '.' {
				return netip.Addr{}, false
			}
			var v byte
			switch {
			case c >= '0' && c <= '9':
				v = c - '0'
			case c >= 'a' && c <= 'f':
				v = c - 'a' + 10
			default:
				return netip.Addr{}, false
			}
			pos := 31 - i // first label is the last nibble
			if pos%2 == 0 {
				b[pos/2] |= v << 4
			} else {
				b[pos/2] |= v
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
