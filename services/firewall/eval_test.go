package firewall

import (
	"net/netip"
	"slices"
	"testing"
)

// packet is what the evaluator below needs to know about a packet. It lets
// the render tests ask "what happens to this packet" of a Ruleset without
// a kernel; the namespace tests check that the kernel agrees.
type packet struct {
	iif, oif     string
	src, dst     netip.Addr
	proto        Proto
	sport, dport uint16
	icmpType     uint8
	tcpFlags     uint8  // TCP only; zero is read as a SYN
	ct           uint32 // conntrack state bit; zero means new
	mark         uint32
}

func (p packet) family() int {
	if p.src.Is4() {
		return 4
	}
	return 6
}

func (p packet) ctBits() uint32 {
	if p.ct == 0 {
		return CtNew
	}
	return p.ct
}

// outcome is the verdict of the whole path and the counters it touched.
type outcome struct {
	verdict  VerdictKind
	counters []string
	masq     bool
}

// check fails t unless the path ended in verdict and, when counter is
// set, touched that counter.
func (o outcome) check(t *testing.T, verdict VerdictKind, counter string) {
	t.Helper()
	if o.verdict != verdict {
		t.Errorf("verdict = %v, want %v (counters %v)", o.verdict, verdict, o.counters)
	}
	if counter != "" && !slices.Contains(o.counters, counter) {
		t.Errorf("counters = %v, want %s among them", o.counters, counter)
	}
}

// path runs the packet through prerouting and then input (oif empty) or
// forward and postrouting, as netfilter would.
func (rs Ruleset) path(p packet) outcome {
	var o outcome
	hooks := []string{"prerouting", "input"}
	if p.oif != "" {
		hooks = []string{"prerouting", "forward", "postrouting"}
	}
	for _, h := range hooks {
		for _, c := range rs.Chains {
			if c.Hook == nil || c.Hook.Hook != h {
				continue
			}
			v := rs.run(c, p, &o)
			if v == Continue {
				v = c.Hook.Policy
			}
			if v == Masquerade || v == SourceNAT {
				o.masq = true
				v = Accept
			}
			if v == Drop {
				o.verdict = Drop
				return o
			}
		}
	}
	o.verdict = Accept
	return o
}

func (rs Ruleset) run(c Chain, p packet, o *outcome) VerdictKind {
	for _, r := range c.Rules {
		if !rs.matches(r, p) {
			continue
		}
		if r.Counter != "" {
			o.counters = append(o.counters, r.Counter)
		}
		switch r.Verdict.Kind {
		case Continue:
			continue
		case Jump:
			if v := rs.run(*rs.Chain(r.Verdict.Chain), p, o); v != Continue {
				return v
			}
		default:
			return r.Verdict.Kind
		}
	}
	return Continue
}

func (rs Ruleset) matches(r Rule, p packet) bool {
	for _, m := range r.Match {
		if !rs.match(m, p) {
			return false
		}
	}
	return true
}

// inPrefixes looks up a masked to mask bits, as the kernel does: an exact
// match of the masked address among the set's elements.
func (rs Ruleset) inPrefixes(name string, a netip.Addr, mask int) bool {
	key := a
	if mask != 0 {
		key = netip.PrefixFrom(a, mask).Masked().Addr()
	}
	for _, q := range rs.Set(name).Prefixes {
		if q.Masked().Addr() == key {
			return true
		}
	}
	return false
}

func (rs Ruleset) inServices(name string, e Endpoint) bool {
	return slices.Contains(rs.Set(name).Services, e)
}

func (rs Ruleset) match(m Match, p packet) bool {
	// Protocol dependencies are not negated, like nft's: "ip6 saddr !=
	// @x" never matches an IPv4 packet.
	if m.Family != 0 && m.Family != p.family() {
		return false
	}
	var hit bool
	switch m.Kind {
	case MatchIIFName:
		hit = p.iif == m.Name
	case MatchOIFName:
		hit = p.oif == m.Name
	case MatchNFProto:
		hit = true // family checked above
	case MatchL4Proto:
		hit = p.proto == m.Proto
	case MatchTCPFlags:
		if p.proto != TCP {
			return false
		}
		flags := p.tcpFlags
		if flags == 0 {
			flags = TCPSyn
		}
		hit = flags&uint8(m.Bits) == m.Flags
	case MatchCtState:
		hit = p.ctBits()&m.Bits != 0
	case MatchSaddrSet:
		hit = rs.inPrefixes(m.Name, p.src, m.Mask)
	case MatchDaddrSet:
		hit = rs.inPrefixes(m.Name, p.dst, m.Mask)
	case MatchSaddrPrefix:
		hit = m.Prefix.Contains(p.src)
	case MatchDaddrPrefix:
		hit = m.Prefix.Contains(p.dst)
	case MatchSport:
		if p.proto != m.Port.Proto {
			return false
		}
		hit = p.sport == m.Port.Port
	case MatchDport:
		if p.proto != m.Port.Proto {
			return false
		}
		hit = p.dport == m.Port.Port
	case MatchICMPTypeSet:
		want := Proto(58)
		if m.Family == 4 {
			want = 1
		}
		if p.proto != want {
			return false
		}
		hit = slices.Contains(rs.Set(m.Name).Types, p.icmpType)
	case MatchServiceSet:
		hit = rs.inServices(m.Name, Endpoint{Port: Port{p.proto, p.dport}})
	case MatchDaddrServiceSet:
		if p.family() != 6 {
			return false
		}
		hit = rs.inServices(m.Name, Endpoint{Addr: p.dst, Port: Port{p.proto, p.dport}})
	case MatchTokenServiceSet:
		if p.family() != 6 {
			return false
		}
		b := p.dst.As16()
		clear(b[:8])
		hit = rs.inServices(m.Name, Endpoint{Addr: netip.AddrFrom16(b), Port: Port{p.proto, p.dport}})
	case MatchMark:
		hit = p.mark&m.Mark == m.Mark
	}
	return hit != m.Not
}
