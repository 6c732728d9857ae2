package firewall

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// TableName is the one inet table the gizmo owns. Nothing else writes it,
// and every apply replaces it whole.
const TableName = "gizmo"

// Named counters. The dashboard and /metrics read them through Counters;
// their names are part of the metrics and must stay stable.
const (
	CounterIPv6Forwarded = "ipv6-forwarded"      // native IPv6, both directions
	CounterNAT44         = "nat44-legacy"        // legacy IPv4 pool, both directions
	CounterNAT64Passed   = "nat64-passed"        // packets the NAT64 program left to the stack
	CounterInboundToken  = "inbound-token"       // allowed by a token rule
	CounterInboundPrefix = "inbound-prefix"      // allowed by a prefix rule
	CounterInboundHost   = "inbound-host"        // allowed by a host's exposed ports
	CounterDropSpoofLAN  = "drop-spoofed-lan"    // BCP 38: LAN source outside the LAN prefixes
	CounterDropLANWAN    = "drop-lan-wan-source" // LAN source claiming the gizmo's WAN address
	CounterDropNotSyn    = "drop-new-not-syn"    // TCP without SYN opening a flow conntrack does not know
	CounterDropSpoofWAN  = "drop-spoofed-wan"    // WAN source claiming to be inside
	CounterDropMgmtWAN   = "drop-mgmt-wan"       // management port asked from the WAN
	CounterDropInputWAN  = "drop-input-wan"      // anything else to the gizmo from the WAN
	CounterDropFwdWAN    = "drop-forward-wan"    // unsolicited inbound to the LAN
	CounterDropFwdLAN    = "drop-forward-lan"    // LAN traffic with no business being routed
	CounterDropInvalid   = "drop-invalid"        // conntrack says invalid
	CounterDropOther     = "drop-other"          // from an interface that is neither LAN nor WAN
)

// CounterNames lists every named counter in the order Render creates them.
var counterNames = []string{
	CounterIPv6Forwarded, CounterNAT44, CounterNAT64Passed,
	CounterInboundToken, CounterInboundPrefix, CounterInboundHost,
	CounterDropSpoofLAN, CounterDropSpoofWAN, CounterDropMgmtWAN,
	CounterDropInputWAN, CounterDropFwdWAN, CounterDropFwdLAN,
	CounterDropInvalid, CounterDropOther, CounterDropLANWAN, CounterDropNotSyn,
}

// CounterNames returns the names of all counters the ruleset defines.
func CounterNames() []string { return slices.Clone(counterNames) }

// ICMPv6 types by number (RFC 4443, RFC 4861, RFC 3810, RFC 3122, RFC 3971,
// RFC 4286).
var (
	// icmpv6Transit is RFC 4890 §4.3.1 (must not be dropped) plus §4.3.2
	// (normally not dropped; the codes §4.3.2 adds are the remaining codes
	// of types 3 and 4, so whole types are allowed).
	icmpv6Transit = []uint8{
		1,   // destination unreachable, all codes
		2,   // packet too big: PMTUD (RFC 8201)
		3,   // time exceeded
		4,   // parameter problem
		128, // echo request
		129, // echo reply
	}
	// icmpv6Local is RFC 4890 §4.4.1 and §4.4.2, for traffic to the
	// gizmo itself on the uplink: the errors, echo, and what SLAAC, ND,
	// MLD, SEND and multicast router discovery need. Redirect (137), router
	// renumbering (138) and node information (139, 140) are §4.4.3/§4.4.4
	// and stay dropped.
	icmpv6Local = []uint8{
		1, 2, 3, 4, 128, 129,
		130, 131, 132, 143, // MLD query, report, done, MLDv2 report
		133, 134, 135, 136, // RS, RA, NS, NA
		141, 142, // inverse ND
		148, 149, // SEND certification path
		151, 152, 153, // multicast router discovery
	}
	// icmpLocal are the ICMPv4 messages the gizmo accepts on the uplink:
	// the errors (RFC 1122 §3.2.2), so that errors about its own flows and
	// about NAT64 flows the program passes to the stack arrive, and echo
	// (RFC 1122 §3.2.2.6), which the NAT64 program also leaves to the stack.
	icmpLocal = []uint8{
		3,  // destination unreachable, incl. fragmentation needed (PMTUD)
		8,  // echo request
		11, // time exceeded
		12, // parameter problem
	}
)

// Set names.
const (
	setLAN6Src       = "lan6_src"
	setLAN4Hosts     = "lan4_hosts"
	setWANSelf6      = "wan_self6"
	setWANSelf4      = "wan_self4"
	setLAN6          = "lan6"
	setWANSpoof6     = "wan_spoof6"
	setWANSpoof4     = "wan_spoof4"
	setManagement    = "management"
	setICMPv6Local   = "icmpv6_local"
	setICMPv6Transit = "icmpv6_transit"
	setICMPLocal     = "icmp_local"
	setInboundToken  = "inbound_token"
	setInboundPrefix = "inbound_prefix"
	setInboundHost   = "inbound_host"
)

var (
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	// linkLocal64 is where link-local addresses live (RFC 4291 §2.5.6:
	// fe80::/10 followed by 54 zero bits).
	linkLocal64  = netip.MustParsePrefix("fe80::/64")
	unspecified6 = netip.MustParsePrefix("::/128")
	unspecified4 = netip.MustParsePrefix("0.0.0.0/32")
)

// Render turns a validated plan into the ruleset. It is pure: the same plan
// gives the same ruleset, and the rule count depends only on the number of
// LAN interfaces, never on hosts, addresses or inbound rules, which all
// live in sets.
func Render(p Plan) Ruleset {
	rs := Ruleset{Table: TableName, Counters: CounterNames()}

	rs.Sets = append(rs.Sets,
		Set{Name: setLAN6Src, Kind: SetIPv6Prefixes, Bits: 64, Prefixes: mergePrefixes(append(lan6(p), linkLocal64))},
		Set{Name: setLAN4Hosts, Kind: SetIPv4Prefixes, Bits: 32, Prefixes: mergePrefixes(lan4Hosts(p))},
		Set{Name: setLAN6, Kind: SetIPv6Prefixes, Bits: 64, Prefixes: mergePrefixes(lan6(p))},
		Set{Name: setWANSelf6, Kind: SetIPv6Prefixes, Bits: 128, Prefixes: hostPrefixes(p.WANIPv6)},
		Set{Name: setWANSelf4, Kind: SetIPv4Prefixes, Bits: 32, Prefixes: hostPrefixes([]netip.Addr{p.WANIPv4})},
	)
	rs.Sets = append(rs.Sets, prefixSets(setWANSpoof6, SetIPv6Prefixes, wanSpoof6(p))...)
	rs.Sets = append(rs.Sets,
		Set{Name: setManagement, Kind: SetServices, Services: services(netip.Addr{}, p.ManagementPorts)},
		Set{Name: setICMPv6Local, Kind: SetICMPv6Types, Types: icmpv6Local},
		Set{Name: setICMPv6Transit, Kind: SetICMPv6Types, Types: icmpv6Transit},
		Set{Name: setICMPLocal, Kind: SetICMPTypes, Types: icmpLocal},
		Set{Name: setInboundToken, Kind: SetIPv6Services, Services: tokenServices(p.TokenRules)},
	)
	rs.Sets = append(rs.Sets, prefixSets(setInboundPrefix, SetIPv6Prefixes, p.PrefixRules)...)
	rs.Sets = append(rs.Sets, Set{Name: setInboundHost, Kind: SetIPv6Services, Services: hostServices(p.HostRules)})

	rs.Chains = []Chain{
		input(p),
		inputLAN(p),
		inputWAN(p, rs.Sets),
		forward(p),
		forwardLAN(p),
		forwardWAN(p, rs.Sets),
		postrouting(p),
	}
	return rs
}

// prefixSets splits prefixes by length into sets named base_<length>, one
// masked lookup each (see Set).
func prefixSets(base string, kind SetKind, ps []netip.Prefix) []Set {
	byLen := map[int][]netip.Prefix{}
	for _, p := range mergePrefixes(ps) {
		byLen[p.Bits()] = append(byLen[p.Bits()], p)
	}
	var out []Set
	for _, l := range slices.Sorted(maps.Keys(byLen)) {
		out = append(out, Set{Name: fmt.Sprintf("%s_%d", base, l), Kind: kind, Bits: l, Prefixes: byLen[l]})
	}
	return out
}

// setsNamed returns the sets whose name starts with base_.
func setsNamed(sets []Set, base string) []Set {
	var out []Set
	for _, s := range sets {
		if strings.HasPrefix(s.Name, base+"_") {
			out = append(out, s)
		}
	}
	return out
}

// lan4Hosts are the single IPv4 sources the LAN may use towards the gizmo
// besides the legacy pool: 0.0.0.0, a DHCPv4 client without an address
// (RFC 2131 §4.1). Nothing is forwarded from it.
func lan4Hosts(Plan) []netip.Prefix {
	return []netip.Prefix{unspecified4}
}

// hostPrefixes are the valid addresses as host prefixes, without duplicates.
func hostPrefixes(as []netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range as {
		if a.IsValid() {
			out = append(out, netip.PrefixFrom(a.WithZone(""), a.BitLen()))
		}
	}
	return mergePrefixes(out)
}

// lan6 are the LAN's /64s: its own and the ones it shares with the WAN.
func lan6(p Plan) []netip.Prefix {
	return append(slices.Clone(p.LANPrefixes), p.Shared...)
}

// wanSpoof6 leaves p.Shared out: WAN-side neighbours live there too.
func wanSpoof6(p Plan) []netip.Prefix {
	var s []netip.Prefix
	s = append(s, validPrefixes(p.Delegated, p.ULA)...)
	s = append(s, p.Retired...)
	s = append(s, p.LANPrefixes...)
	return s
}

func validPrefixes(ps ...netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.IsValid() {
			out = append(out, p)
		}
	}
	return out
}

func services(addr netip.Addr, ports []Port) []Endpoint {
	var out []Endpoint
	for _, p := range ports {
		out = append(out, Endpoint{Addr: addr, Port: p})
	}
	return sortServices(out)
}

func tokenServices(rules []TokenRule) []Endpoint {
	var out []Endpoint
	for _, r := range rules {
		out = append(out, services(r.Token, r.Ports)...)
	}
	return sortServices(out)
}

func hostServices(rules []HostRule) []Endpoint {
	var out []Endpoint
	for _, r := range rules {
		for _, a := range r.Addrs {
			out = append(out, services(a, r.Ports)...)
		}
	}
	return sortServices(out)
}

// sortServices orders the elements and drops duplicates: the kernel
// refuses a batch that adds the same element twice.
func sortServices(s []Endpoint) []Endpoint {
	slices.SortFunc(s, func(a, b Endpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port.Port, b.Port.Port))
	})
	return slices.Compact(s)
}

// mergePrefixes sorts prefixes and removes those contained in another: an
// interval set refuses overlapping elements.
func mergePrefixes(ps []netip.Prefix) []netip.Prefix {
	ps = slices.Clone(ps)
	for i := range ps {
		ps[i] = ps[i].Masked()
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	var out []netip.Prefix
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue // inside the previous one (sorted: a container comes first)
		}
		out = append(out, p)
	}
	return out
}

func iif(name string) Match  { return Match{Kind: MatchIIFName, Name: name} }
func oif(name string) Match  { return Match{Kind: MatchOIFName, Name: name} }
func ctState(b uint32) Match { return Match{Kind: MatchCtState, Bits: b} }
func nfproto(f int) Match    { return Match{Kind: MatchNFProto, Family: f} }
func rule(c string, v VerdictKind, comment string, m ...Match) Rule {
	return Rule{Match: m, Counter: c, Verdict: Verdict{Kind: v}, Comment: comment}
}

// spoofLAN are the ingress filtering rules for packets from the LAN (BCP
// 38, RFC 3704 §2.1: a source the LAN cannot own is dropped). They run for
// every packet that is not part of an established flow: an established
// flow's source was checked on its first packet, so its other packets skip
// them. A dropped packet's conntrack entry is never confirmed, so spoofed
// floods do not fill the conntrack table.
//
//   - The gizmo's own WAN addresses never come from the LAN, even where the
//     LAN shares the WAN's /64 (RFC 7278): a host using one would have its
//     traffic leave as the gizmo's, and the replies would stay on the
//     gizmo. Counted apart (CounterDropLANWAN).
//   - An IPv6 source must be in a LAN /64 or link-local; an IPv4 source in
//     the legacy pool.
//   - The unspecified addresses are for a host that has no address yet
//     (RFC 4862 §5.4: DAD, and the MLD reports it sends, RFC 3810 §5.2.13;
//     RFC 2131 §4.1: a DHCPv4 client): towards the gizmo, :: only for
//     ICMPv6 and 0.0.0.0 only for the DHCPv4 server; forwarded, never (RFC
//     4291 §2.5.2: "must not be used as the source address of IPv6
//     packets that are forwarded").
func spoofLAN(p Plan, forward bool) []Rule {
	rs := []Rule{
		rule(CounterDropLANWAN, Drop, "RFC 3704: LAN source is the gizmo's WAN address",
			Match{Kind: MatchSaddrSet, Family: 6, Name: setWANSelf6}),
		rule(CounterDropLANWAN, Drop, "RFC 3704: LAN source is the gizmo's WAN address",
			Match{Kind: MatchSaddrSet, Family: 4, Name: setWANSelf4}),
	}
	v6 := []Match{{Kind: MatchSaddrSet, Family: 6, Mask: 64, Not: true, Name: setLAN6Src}}
	var v4 []Match
	if p.Legacy4.IsValid() {
		v4 = append(v4, Match{Kind: MatchSaddrPrefix, Family: 4, Not: true, Prefix: p.Legacy4})
	}
	if forward {
		if len(v4) == 0 {
			v4 = []Match{{Kind: MatchNFProto, Family: 4}} // no legacy pool: no IPv4 source
		}
		return append(rs,
			rule(CounterDropSpoofLAN, Drop, "BCP 38: IPv6 source not in a LAN prefix", v6...),
			rule(CounterDropSpoofLAN, Drop, "BCP 38: IPv4 source not in the legacy pool", v4...),
		)
	}
	v6 = append(v6, Match{Kind: MatchSaddrPrefix, Family: 6, Not: true, Prefix: unspecified6})
	v4 = append(v4, Match{Kind: MatchSaddrSet, Family: 4, Not: true, Name: setLAN4Hosts})
	return append(rs,
		rule(CounterDropSpoofLAN, Drop, "BCP 38: IPv6 source not in a LAN prefix", v6...),
		rule(CounterDropSpoofLAN, Drop, "BCP 38: IPv4 source not in the legacy pool", v4...),
		rule(CounterDropSpoofLAN, Drop, "RFC 4862 5.4: the unspecified source is for DAD and MLD",
			Match{Kind: MatchSaddrPrefix, Family: 6, Prefix: unspecified6},
			Match{Kind: MatchL4Proto, Not: true, Proto: 58}),
		rule(CounterDropSpoofLAN, Drop, "RFC 2131 4.1: 0.0.0.0 only asks the DHCPv4 server",
			Match{Kind: MatchSaddrPrefix, Family: 4, Prefix: unspecified4},
			Match{Kind: MatchL4Proto, Not: true, Proto: UDP}),
		rule(CounterDropSpoofLAN, Drop, "RFC 2131 4.1: 0.0.0.0 only asks the DHCPv4 server",
			Match{Kind: MatchSaddrPrefix, Family: 4, Prefix: unspecified4},
			Match{Kind: MatchDport, Not: true, Port: Port{UDP, 67}}),
	)
}

// spoofWAN drops packets from the WAN that claim a source behind us: the
// delegation (current and retired), our ULA, the legacy pool (RFC 7084,
// RFC 6092 REC-4).
func spoofWAN(p Plan, sets []Set) []Rule {
	var rs []Rule
	for _, s := range setsNamed(sets, setWANSpoof6) {
		rs = append(rs, rule(CounterDropSpoofWAN, Drop, "RFC 7084: WAN source inside our prefixes or ULA",
			Match{Kind: MatchSaddrSet, Family: 6, Mask: s.Bits, Name: s.Name}))
	}
	if p.Legacy4.IsValid() {
		rs = append(rs, rule(CounterDropSpoofWAN, Drop, "RFC 7084: WAN source inside the legacy pool",
			Match{Kind: MatchSaddrPrefix, Family: 4, Prefix: p.Legacy4}))
	}
	return rs
}

// basePolicy is the policy of input and forward. Their last rule drops
// and counts ("default deny") anyway; the policy is the second line.
const basePolicy = Drop

func input(p Plan) Chain {
	c := Chain{Name: "input", Hook: &Hook{Type: "filter", Hook: "input", Priority: 0, Policy: basePolicy}}
	c.Rules = append(c.Rules,
		rule("", Accept, "", iif("lo")),
		rule("", Accept, "", ctState(CtEstablished)),
	)
	c.Rules = append(c.Rules, bySide(p, "input")...)
	return c
}

// bySide jumps from the base chain named chain to chain_lan for packets
// from a LAN interface and to chain_wan for those from the WAN, and denies
// whatever came in on neither.
func bySide(p Plan, chain string) []Rule {
	var rs []Rule
	for _, l := range p.LAN {
		rs = append(rs, Rule{Match: []Match{iif(l)}, Verdict: Verdict{Kind: Jump, Chain: chain + "_lan"}})
	}
	return append(rs,
		Rule{Match: []Match{iif(p.WAN)}, Verdict: Verdict{Kind: Jump, Chain: chain + "_wan"}},
		rule(CounterDropOther, Drop, "default deny"),
	)
}

// inputLAN: the management plane (dashboard, gokrazy, DNS, DHCP, RS/NS)
// is for the LAN, from sources that pass BCP 38.
func inputLAN(p Plan) Chain {
	c := Chain{Name: "input_lan", Rules: spoofLAN(p, false)}
	c.Rules = append(c.Rules, rule("", Accept, ""))
	return c
}

func inputWAN(p Plan, sets []Set) Chain {
	c := Chain{Name: "input_wan", Rules: spoofWAN(p, sets)}
	c.Rules = append(c.Rules,
		rule("", Accept, "", ctState(CtRelated)),
		rule(CounterDropMgmtWAN, Drop, "management plane is LAN-only",
			Match{Kind: MatchServiceSet, Name: setManagement}),
		rule("", Accept, "RFC 4890 4.4", Match{Kind: MatchICMPTypeSet, Family: 6, Name: setICMPv6Local}),
		rule("", Accept, "RFC 8415 7.2: DHCPv6 client",
			Match{Kind: MatchSaddrPrefix, Family: 6, Prefix: linkLocal6},
			Match{Kind: MatchSport, Port: Port{UDP, 547}}, Match{Kind: MatchDport, Port: Port{UDP, 546}}),
		rule("", Accept, "RFC 2131 4.1: DHCPv4 client",
			Match{Kind: MatchSport, Port: Port{UDP, 67}}, Match{Kind: MatchDport, Port: Port{UDP, 68}}),
		rule("", Accept, "RFC 1122 3.2.2", Match{Kind: MatchICMPTypeSet, Family: 4, Name: setICMPLocal}),
		rule(CounterDropInputWAN, Drop, ""),
	)
	return c
}

// forward accepts established flows first, counted as native IPv6 or
// legacy IPv4: that is the per-packet fast path, two rules long.
//
// A TCP segment without SYN that conntrack does not know (it picks such
// flows up mid-stream as new) is dropped, from either side: a flow whose
// entry was deleted because its inbound rule went away (Service.Apply)
// must not come back as a "new" flow from the LAN host's next segment, and
// nothing legitimate opens a TCP connection without a SYN (RFC 9293
// §3.5).
func forward(p Plan) Chain {
	c := Chain{Name: "forward", Hook: &Hook{Type: "filter", Hook: "forward", Priority: 0, Policy: basePolicy}}
	c.Rules = append(c.Rules,
		rule(CounterIPv6Forwarded, Accept, "", ctState(CtEstablished), nfproto(6)),
		rule(CounterNAT44, Accept, "", ctState(CtEstablished)),
		rule(CounterDropNotSyn, Drop, "RFC 9293 3.5: a connection opens with SYN", ctState(CtNew),
			Match{Kind: MatchTCPFlags, Not: true, Bits: uint32(TCPFin | TCPSyn | TCPRst | TCPAck), Flags: TCPSyn}),
	)
	c.Rules = append(c.Rules, bySide(p, "forward")...)
	return c
}

// forwardLAN: everything the LAN sends may leave once its source passes
// BCP 38; the counters split it into native and legacy.
func forwardLAN(p Plan) Chain {
	c := Chain{Name: "forward_lan", Rules: spoofLAN(p, true)}
	c.Rules = append(c.Rules, rule(CounterIPv6Forwarded, Accept, "", nfproto(6)))
	if p.Legacy4.IsValid() {
		c.Rules = append(c.Rules, rule(CounterNAT44, Accept, "",
			Match{Kind: MatchSaddrPrefix, Family: 4, Prefix: p.Legacy4}))
	}
	c.Rules = append(c.Rules, rule(CounterDropFwdLAN, Drop, ""))
	return c
}

// forwardWAN: unsolicited inbound traffic is dropped unless the ICMPv6
// rules of RFC 4890 §4.3 or an owner's inbound rule allow it.
func forwardWAN(p Plan, sets []Set) Chain {
	c := Chain{Name: "forward_wan", Rules: spoofWAN(p, sets)}
	c.Rules = append(c.Rules,
		rule(CounterIPv6Forwarded, Accept, "", ctState(CtRelated), nfproto(6)),
		rule(CounterNAT44, Accept, "", ctState(CtRelated)),
	)
	if p.NAT64Mark != 0 {
		c.Rules = append(c.Rules, rule(CounterNAT64Passed, Accept, "NAT64 4to6 left to the stack",
			Match{Kind: MatchMark, Mark: p.NAT64Mark}))
	}
	c.Rules = append(c.Rules,
		rule("", Accept, "RFC 4890 4.3", Match{Kind: MatchICMPTypeSet, Family: 6, Name: setICMPv6Transit}),
		rule(CounterDropInvalid, Drop, "", ctState(CtInvalid)),
		rule(CounterInboundToken, Accept, "",
			Match{Kind: MatchDaddrSet, Family: 6, Mask: 64, Name: setLAN6},
			Match{Kind: MatchTokenServiceSet, Name: setInboundToken}),
	)
	for _, s := range setsNamed(sets, setInboundPrefix) {
		c.Rules = append(c.Rules, rule(CounterInboundPrefix, Accept, "",
			Match{Kind: MatchDaddrSet, Family: 6, Mask: s.Bits, Name: s.Name}))
	}
	c.Rules = append(c.Rules,
		rule(CounterInboundHost, Accept, "", Match{Kind: MatchDaddrServiceSet, Name: setInboundHost}),
		rule(CounterDropFwdWAN, Drop, ""),
	)
	return c
}

// postrouting masquerades the legacy pool, and only it: IPv6 is never
// translated, and NAT64 runs in eBPF before netfilter.
func postrouting(p Plan) Chain {
	c := Chain{Name: "postrouting", Hook: &Hook{Type: "nat", Hook: "postrouting", Priority: 100, Policy: Accept}}
	if !p.Legacy4.IsValid() {
		return c
	}
	pool := Match{Kind: MatchSaddrPrefix, Family: 4, Prefix: p.Legacy4}
	if p.NAT44Ports != (PortRange{}) && p.WANIPv4.IsValid() {
		// Keep NAT44 inside its port (and ICMP identifier) range, away
		// from the NAT64 program's bindings on the same address.
		for _, proto := range []Proto{TCP, UDP, 1} {
			c.Rules = append(c.Rules, Rule{
				Match:   []Match{oif(p.WAN), pool, {Kind: MatchL4Proto, Proto: proto}},
				Verdict: Verdict{Kind: SourceNAT, Addr: p.WANIPv4, Ports: p.NAT44Ports},
			})
		}
	}
	c.Rules = append(c.Rules, rule("", Masquerade, "", oif(p.WAN), pool))
	return c
}
