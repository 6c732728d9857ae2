package firewall

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Ruleset is the firewall as a value: one inet table with its named
// counters, sets and chains. Render builds it from a Plan without touching
// the kernel; apply turns it into one netlink batch. String prints it in
// nft(8)'s own syntax, which is what `nft list table inet gizmo` shows
// after the apply, so that tests can compare the two.
type Ruleset struct {
	Table    string
	Counters []string
	Sets     []Set
	Chains   []Chain
}

// SetKind is the key type of a named set.
type SetKind int

const (
	SetIPv6Prefixes SetKind = iota // ipv6_addr: prefixes of one length, as masked addresses
	SetIPv4Prefixes                // ipv4_addr: likewise
	SetIPv6Services                // ipv6_addr . inet_proto . inet_service
	SetServices                    // inet_proto . inet_service
	SetICMPv6Types                 // icmpv6_type
	SetICMPTypes                   // icmp_type
)

// Set is a named set. Which field holds the elements depends on Kind.
//
// Prefix sets are plain hash sets, not interval sets: every prefix in one
// has the same length Bits, and rules look up the address masked to Bits.
// On Linux 6.18 a new interval (rbtree) set is not consulted atomically
// with the rules of the same batch: for a moment after the commit its
// lookups miss, which TestNoGapAcrossReapply caught as lost packets.
// Hash set elements become visible with the generation flip itself.
type Set struct {
	Name     string
	Kind     SetKind
	Bits     int            // prefix length of every element of a prefix set
	Prefixes []netip.Prefix // SetIPv6Prefixes, SetIPv4Prefixes
	Services []Endpoint     // SetIPv6Services (Addr set), SetServices (Addr zero)
	Types    []uint8        // SetICMPv6Types, SetICMPTypes
}

// Endpoint is one element of a service set: address (when the set has one),
// protocol and port.
type Endpoint struct {
	Addr netip.Addr
	Port
}

// Hook attaches a base chain to a netfilter hook.
type Hook struct {
	Type     string // "filter" or "nat"
	Hook     string // "prerouting", "input", "forward", "postrouting"
	Priority int32
	Policy   VerdictKind // Accept or Drop
}

// Chain is a base chain (Hook set) or a regular chain reached by jump.
type Chain struct {
	Name  string
	Hook  *Hook
	Rules []Rule
}

// Rule is a conjunction of matches, an optional named counter and a verdict.
type Rule struct {
	Match   []Match
	Counter string // named counter object, "" for none
	Verdict Verdict
	Comment string
}

// VerdictKind is what a rule does with a packet that matches.
type VerdictKind int

const (
	Continue VerdictKind = iota // only count
	Accept
	Drop
	Jump
	Masquerade
	SourceNAT // snat ip to Addr:Ports
)

// Verdict is a rule's action; Chain names the target of a Jump, Addr and
// Ports the new source of a SourceNAT.
type Verdict struct {
	Kind  VerdictKind
	Chain string
	Addr  netip.Addr
	Ports PortRange
}

// PortRange is an inclusive range of transport ports.
type PortRange struct{ Min, Max uint16 }

// MatchKind selects what a Match compares.
type MatchKind int

const (
	MatchIIFName         MatchKind = iota // meta iifname == Name
	MatchOIFName                          // meta oifname == Name
	MatchNFProto                          // meta nfproto == Family
	MatchL4Proto                          // meta l4proto == Proto
	MatchCtState                          // ct state & Bits != 0
	MatchSaddrSet                         // ip/ip6 saddr in @Name (Family)
	MatchDaddrSet                         // ip/ip6 daddr in @Name (Family)
	MatchSaddrPrefix                      // ip/ip6 saddr in Prefix
	MatchDaddrPrefix                      // ip/ip6 daddr in Prefix
	MatchSport                            // udp/tcp sport == Port.Port (Port.Proto)
	MatchDport                            // udp/tcp dport == Port.Port (Port.Proto)
	MatchICMPTypeSet                      // icmp/icmpv6 type in @Name (Family)
	MatchServiceSet                       // meta l4proto . th dport in @Name
	MatchDaddrServiceSet                  // ip6 daddr . meta l4proto . th dport in @Name
	MatchTokenServiceSet                  // ip6 daddr & ::ffff:ffff:ffff:ffff . meta l4proto . th dport in @Name
	MatchMark                             // meta mark & Mark == Mark
	MatchTCPFlags                         // tcp flags & Bits == Flags
)

// TCP flag bits (RFC 9293 §3.1).
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPAck uint8 = 0x10
)

// Conntrack state bits as the kernel numbers them (nf_conntrack_common.h).
const (
	CtInvalid     uint32 = 1
	CtEstablished uint32 = 2
	CtRelated     uint32 = 4
	CtNew         uint32 = 8
)

// Match is one condition of a rule. The fields used depend on Kind.
type Match struct {
	Kind   MatchKind
	Not    bool
	Name   string // interface or set name
	Family int    // 4 or 6
	Proto  Proto
	Port   Port
	Bits   uint32 // conntrack state bits; the mask of MatchTCPFlags
	Flags  uint8  // the value of MatchTCPFlags
	Mask   int    // prefix length the address is masked to before a set lookup; 0 for none
	Prefix netip.Prefix
	Mark   uint32
}

func famWord(f int) string {
	if f == 4 {
		return "ip"
	}
	return "ip6"
}

func (m Match) op() string {
	if m.Not {
		return "!= "
	}
	return ""
}

func protoName(p Proto) string {
	switch p {
	case 1:
		return "icmp"
	case 58:
		return "ipv6-icmp"
	}
	return p.String()
}

// String prints the match as nft(8) lists it.
func (m Match) String() string {
	switch m.Kind {
	case MatchIIFName:
		return fmt.Sprintf("iifname %s%q", m.op(), m.Name)
	case MatchOIFName:
		return fmt.Sprintf("oifname %s%q", m.op(), m.Name)
	case MatchNFProto:
		if m.Family == 4 {
			return "meta nfproto " + m.op() + "ipv4"
		}
		return "meta nfproto " + m.op() + "ipv6"
	case MatchL4Proto:
		return "meta l4proto " + m.op() + protoName(m.Proto)
	case MatchCtState:
		var names []string
		for _, b := range []struct {
			bit  uint32
			name string
		}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}, {CtNew, "new"}} {
			if m.Bits&b.bit != 0 {
				names = append(names, b.name)
			}
		}
		return "ct state " + m.op() + strings.Join(names, ",")
	case MatchSaddrSet:
		return famWord(m.Family) + " saddr " + m.maskString() + "@" + m.Name
	case MatchDaddrSet:
		return famWord(m.Family) + " daddr " + m.maskString() + "@" + m.Name
	case MatchSaddrPrefix:
		return famWord(m.Family) + " saddr " + m.op() + prefixString(m.Prefix)
	case MatchDaddrPrefix:
		return famWord(m.Family) + " daddr " + m.op() + prefixString(m.Prefix)
	case MatchSport:
		return m.Port.Proto.String() + " sport " + m.op() + strconv.Itoa(int(m.Port.Port))
	case MatchDport:
		return m.Port.Proto.String() + " dport " + m.op() + strconv.Itoa(int(m.Port.Port))
	case MatchICMPTypeSet:
		if m.Family == 4 {
			return "icmp type " + m.op() + "@" + m.Name
		}
		return "icmpv6 type " + m.op() + "@" + m.Name
	case MatchServiceSet:
		return "meta l4proto . th dport " + m.op() + "@" + m.Name
	case MatchDaddrServiceSet:
		return "ip6 daddr . meta l4proto . th dport " + m.op() + "@" + m.Name
	case MatchTokenServiceSet:
		return "ip6 daddr & ::ffff:ffff:ffff:ffff . meta l4proto . th dport " + m.op() + "@" + m.Name
	case MatchMark:
		return fmt.Sprintf("meta mark & 0x%08x %s0x%08x", m.Mark, eqOp(m.Not), m.Mark)
	case MatchTCPFlags:
		// nft 1.0 lists "tcp flags & (fin|syn|rst|ack) != syn" this way.
		return "tcp flags " + m.op() + tcpFlagNames(m.Flags) + " / " + tcpFlagNames(uint8(m.Bits))
	}
	return fmt.Sprintf("<match kind %d>", m.Kind)
}

func tcpFlagNames(f uint8) string {
	var names []string
	for _, b := range []struct {
		bit  uint8
		name string
	}{{TCPFin, "fin"}, {TCPSyn, "syn"}, {TCPRst, "rst"}, {0x08, "psh"}, {TCPAck, "ack"}, {0x20, "urg"}, {0x40, "ecn"}, {0x80, "cwr"}} {
		if f&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, ",")
}

// maskString prints the "& mask == " of a masked lookup and the operator
// before the set, as nft does.
func (m Match) maskString() string {
	n := 16
	if m.Family == 4 {
		n = 4
	}
	if m.Mask == 0 || m.Mask == n*8 {
		return m.op()
	}
	a, _ := netip.AddrFromSlice(prefixMask(m.Mask, n))
	// nft spells out the operator after a mask.
	return "& " + a.String() + " " + eqOp(m.Not)
}

func eqOp(not bool) string {
	if not {
		return "!= "
	}
	return "== "
}

// prefixString prints a host prefix as a bare address, like nft does.
func prefixString(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

// String prints the rule as nft(8) lists it.
func (r Rule) String() string {
	var parts []string
	for _, m := range r.Match {
		parts = append(parts, m.String())
	}
	if r.Counter != "" {
		parts = append(parts, fmt.Sprintf("counter name %q", r.Counter))
	}
	switch r.Verdict.Kind {
	case Accept:
		parts = append(parts, "accept")
	case Drop:
		parts = append(parts, "drop")
	case Jump:
		parts = append(parts, "jump "+r.Verdict.Chain)
	case Masquerade:
		parts = append(parts, "masquerade")
	case SourceNAT:
		parts = append(parts, fmt.Sprintf("snat ip to %v:%d-%d", r.Verdict.Addr, r.Verdict.Ports.Min, r.Verdict.Ports.Max))
	}
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}

func (k VerdictKind) String() string {
	switch k {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Jump:
		return "jump"
	case Masquerade:
		return "masquerade"
	case SourceNAT:
		return "snat"
	}
	return "continue"
}

// Chain returns the chain with that name, or nil.
func (rs *Ruleset) Chain(name string) *Chain {
	for i := range rs.Chains {
		if rs.Chains[i].Name == name {
			return &rs.Chains[i]
		}
	}
	return nil
}

// Set returns the set with that name, or nil.
func (rs *Ruleset) Set(name string) *Set {
	for i := range rs.Sets {
		if rs.Sets[i].Name == name {
			return &rs.Sets[i]
		}
	}
	return nil
}

// RuleCount is the number of rules in all chains; it must not grow with
// the number of hosts or addresses, which live in sets.
func (rs Ruleset) RuleCount() int {
	n := 0
	for _, c := range rs.Chains {
		n += len(c.Rules)
	}
	return n
}
