package firewall

import (
	"fmt"

	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	a = netip.MustParseAddr
	q = netip.MustParsePrefix
)

const (
	wan = "uplink0"
	lan = "lan0"
)

var (
	inetHost   = a("2001:db8:ffff::6")     // a host on the internet (the lab's gz-inet)
	inetHost4  = a("198.51.100.80")        // an IPv4 host on the internet
	ispRouter  = a("fe80::1")              // the ISP router's link-local address
	gizmoWAN6  = a("2001:db8:0:1::100")    // the gizmo's WAN address
	gizmoWAN4  = a("192.0.2.100")          // the gizmo's WAN IPv4 (= NAT64 pool)
	lanHost    = a("2001:db8:1000:100::5") // a LAN host in the first /64
	serverTok  = a("2001:db8:1000:100::80")
	serverPriv = a("2001:db8:1000:100:a1b2:c3d4:e5f6:789") // host rule address
	legacyHost = a("203.0.113.140")
	ulaHost    = a("fd12:3456:789a::5")
)

func TestRenderPolicy(t *testing.T) {
	rs := Render(labPlan())
	icmp6 := func(iif, oif string, src, dst netip.Addr, ty uint8, ct uint32) packet {
		return packet{iif: iif, oif: oif, src: src, dst: dst, proto: 58, icmpType: ty, ct: ct}
	}
	l4 := func(iif, oif string, src, dst netip.Addr, p Proto, sport, dport uint16) packet {
		return packet{iif: iif, oif: oif, src: src, dst: dst, proto: p, sport: sport, dport: dport}
	}
	// The kernel's conntrack leaves ND and MLD untracked-but-"invalid"
	// (nf_conntrack_proto_icmpv6: no new connection for those types), so
	// the cases below use CtInvalid for them, as the kernel would.
	tests := []struct {
		name    string
		pkt     packet
		want    VerdictKind
		counter string // a counter the packet must touch, if any
		masq    bool
	}{
		// Input on the uplink.
		{"RFC 4890 4.4.1: NS on uplink0 accepted", icmp6(wan, "", ispRouter, a("ff02::1:ff00:100"), 135, CtInvalid), Accept, "", false},
		{"RFC 4890 4.4.1: NA on uplink0 accepted", icmp6(wan, "", ispRouter, gizmoWAN6, 136, CtInvalid), Accept, "", false},
		{"RFC 4890 4.4.1: RA on uplink0 accepted", icmp6(wan, "", ispRouter, a("ff02::1"), 134, CtInvalid), Accept, "", false},
		{"RFC 4890 4.4.1: MLDv2 report accepted", icmp6(wan, "", ispRouter, a("ff02::16"), 143, CtInvalid), Accept, "", false},
		{"RFC 4890 4.4.1: packet too big accepted", icmp6(wan, "", inetHost, gizmoWAN6, 2, 0), Accept, "", false},
		{"RFC 4890 4.4.1: echo request accepted", icmp6(wan, "", inetHost, gizmoWAN6, 128, 0), Accept, "", false},
		{"RFC 4890 4.4.3: redirect on uplink0 dropped", icmp6(wan, "", ispRouter, gizmoWAN6, 137, CtInvalid), Drop, CounterDropInputWAN, false},
		{"RFC 4890 4.4.4: router renumbering dropped", icmp6(wan, "", inetHost, gizmoWAN6, 138, 0), Drop, CounterDropInputWAN, false},
		{"RFC 4890 4.4.4: node information query dropped", icmp6(wan, "", inetHost, gizmoWAN6, 139, 0), Drop, CounterDropInputWAN, false},
		{"RFC 8415 7.2: DHCPv6 reply from link-local accepted", l4(wan, "", ispRouter, a("fe80::2"), UDP, 547, 546), Accept, "", false},
		{"RFC 8415 7.2: DHCPv6 reply from a global source dropped", l4(wan, "", inetHost, gizmoWAN6, UDP, 547, 546), Drop, CounterDropInputWAN, false},
		{"RFC 2131 4.1: DHCPv4 reply accepted", l4(wan, "", a("192.0.2.1"), a("255.255.255.255"), UDP, 67, 68), Accept, "", false},
		{"RFC 1122 3.2.2: ICMPv4 fragmentation needed to the WAN address accepted",
			packet{iif: wan, src: inetHost4, dst: gizmoWAN4, proto: 1, icmpType: 3}, Accept, "", false},
		{"RFC 1122 3.2.2.6: ICMPv4 echo to the WAN address accepted",
			packet{iif: wan, src: inetHost4, dst: gizmoWAN4, proto: 1, icmpType: 8}, Accept, "", false},
		{"ICMPv4 timestamp to the WAN address dropped",
			packet{iif: wan, src: inetHost4, dst: gizmoWAN4, proto: 1, icmpType: 13}, Drop, CounterDropInputWAN, false},
		{"established reply to the gizmo accepted", packet{iif: wan, src: inetHost, dst: gizmoWAN6, proto: TCP, sport: 443, dport: 40000, ct: CtEstablished}, Accept, "", false},
		{"unsolicited tcp/443 to the gizmo dropped", l4(wan, "", inetHost, gizmoWAN6, TCP, 40000, 443), Drop, CounterDropInputWAN, false},
		{"other interface dropped", l4("eth9", "", inetHost, gizmoWAN6, TCP, 40000, 443), Drop, CounterDropOther, false},

		// Management plane: LAN only.
		{"management: dashboard tcp/80 from uplink0 dropped", l4(wan, "", inetHost, gizmoWAN6, TCP, 40000, 80), Drop, CounterDropMgmtWAN, false},
		{"management: gokrazy tcp/8080 from uplink0 dropped", l4(wan, "", inetHost, gizmoWAN6, TCP, 40000, 8080), Drop, CounterDropMgmtWAN, false},
		{"management: DNS udp/53 from uplink0 dropped", l4(wan, "", inetHost, gizmoWAN6, UDP, 40000, 53), Drop, CounterDropMgmtWAN, false},
		{"management: DHCPv4 server udp/67 from uplink0 dropped", l4(wan, "", a("192.0.2.1"), gizmoWAN4, UDP, 68, 67), Drop, CounterDropMgmtWAN, false},
		{"management: ssh tcp/22 from uplink0 dropped", l4(wan, "", inetHost4, gizmoWAN4, TCP, 40000, 22), Drop, CounterDropMgmtWAN, false},
		{"management: dashboard tcp/80 from the LAN accepted", l4(lan, "", lanHost, a("2001:db8:1000:100::1"), TCP, 40000, 80), Accept, "", false},
		{"management: dashboard on the ULA from the LAN accepted", l4(lan, "", ulaHost, a("fd12:3456:789a::1"), TCP, 40000, 8080), Accept, "", false},
		{"management: DHCPv4 DISCOVER from 0.0.0.0 accepted", l4(lan, "", a("0.0.0.0"), a("255.255.255.255"), UDP, 68, 67), Accept, "", false},
		{"management: DAD NS from :: accepted", icmp6(lan, "", a("::"), a("ff02::1:ff00:5"), 135, CtInvalid), Accept, "", false},

		// BCP 38 on the LAN, RFC 7084 on the WAN.
		{"BCP 38: LAN IPv6 source outside the LAN prefixes dropped", l4(lan, wan, a("2001:db8:9999::5"), inetHost, TCP, 40000, 443), Drop, CounterDropSpoofLAN, false},
		{"BCP 38: LAN IPv4 source outside the legacy pool dropped", l4(lan, wan, a("10.1.2.3"), inetHost4, TCP, 40000, 80), Drop, CounterDropSpoofLAN, false},
		{"BCP 38: link-local LAN source to the gizmo accepted", l4(lan, "", a("fe80::5"), a("ff02::1:2"), UDP, 546, 547), Accept, "", false},
		{"RFC 7084: WAN source inside the delegated prefix dropped", l4(wan, lan, a("2001:db8:1000:1ff::1"), lanHost, TCP, 40000, 22), Drop, CounterDropSpoofWAN, false},
		{"RFC 7084: WAN source inside our ULA dropped", l4(wan, "", a("fd12:3456:789a:5::1"), gizmoWAN6, TCP, 40000, 443), Drop, CounterDropSpoofWAN, false},
		{"RFC 7084: WAN source inside the legacy pool dropped", l4(wan, "", a("203.0.113.200"), gizmoWAN4, TCP, 40000, 443), Drop, CounterDropSpoofWAN, false},
		{"RFC 7084: related ICMPv6 error with a spoofed source dropped", icmp6(wan, lan, a("2001:db8:1000:100::9"), lanHost, 1, CtRelated), Drop, CounterDropSpoofWAN, false},
		{"BCP 38: related ICMP error from a spoofed LAN source dropped", icmp6(lan, wan, a("2001:db8:9999::5"), inetHost, 1, CtRelated), Drop, CounterDropSpoofLAN, false},

		// Forwarding.
		{"LAN to WAN IPv6 accepted and counted native", l4(lan, wan, lanHost, inetHost, TCP, 40000, 443), Accept, CounterIPv6Forwarded, false},
		{"legacy LAN to WAN IPv4 accepted, counted and masqueraded", l4(lan, wan, legacyHost, inetHost4, TCP, 40000, 80), Accept, CounterNAT44, true},
		{"WAN to LAN established accepted and counted native", packet{iif: wan, oif: lan, src: inetHost, dst: lanHost, proto: TCP, sport: 443, dport: 40000, ct: CtEstablished}, Accept, CounterIPv6Forwarded, false},
		{"WAN to LAN legacy reply accepted and counted", packet{iif: wan, oif: lan, src: inetHost4, dst: legacyHost, proto: TCP, sport: 80, dport: 40000, ct: CtEstablished}, Accept, CounterNAT44, false},
		{"WAN to LAN unsolicited tcp dropped", l4(wan, lan, inetHost, lanHost, TCP, 40000, 22), Drop, CounterDropFwdWAN, false},
		{"WAN to LAN unsolicited udp dropped", l4(wan, lan, inetHost, lanHost, UDP, 40000, 53), Drop, CounterDropFwdWAN, false},
		{"RFC 4890 4.3.1: packet too big in transit accepted", icmp6(wan, lan, inetHost, lanHost, 2, 0), Accept, "", false},
		{"RFC 4890 4.3.1: destination unreachable in transit accepted", icmp6(wan, lan, inetHost, lanHost, 1, CtRelated), Accept, "", false},
		{"RFC 4890 4.3.1: echo request in transit accepted", icmp6(wan, lan, inetHost, lanHost, 128, 0), Accept, "", false},
		{"RFC 4890 4.3.2: time exceeded in transit accepted", icmp6(wan, lan, inetHost, lanHost, 3, 0), Accept, "", false},
		{"RFC 4890 4.3.5: router renumbering in transit dropped", icmp6(wan, lan, inetHost, lanHost, 138, 0), Drop, CounterDropFwdWAN, false},
		{"RFC 6092 REC-4: ULA never forwarded from the WAN", l4(wan, lan, inetHost, ulaHost, TCP, 40000, 80), Drop, CounterDropFwdWAN, false},

		// Inbound rules, no port forwarding.
		{"token rule: tcp/443 to ::80 in a LAN prefix accepted", l4(wan, lan, inetHost, serverTok, TCP, 40000, 443), Accept, CounterInboundToken, false},
		{"token rule: tcp/80 to ::80 accepted", l4(wan, lan, inetHost, serverTok, TCP, 40000, 80), Accept, CounterInboundToken, false},
		{"token rule: another port on ::80 dropped", l4(wan, lan, inetHost, serverTok, TCP, 40000, 22), Drop, CounterDropFwdWAN, false},
		{"token rule: udp/443 on ::80 dropped", l4(wan, lan, inetHost, serverTok, UDP, 40000, 443), Drop, CounterDropFwdWAN, false},
		{"token rule: tcp/443 to ::81 dropped", l4(wan, lan, inetHost, a("2001:db8:1000:100::81"), TCP, 40000, 443), Drop, CounterDropFwdWAN, false},
		{"token rule: ::80 outside the LAN prefixes dropped", l4(wan, lan, inetHost, a("2001:db8:1000:1ff::80"), TCP, 40000, 443), Drop, CounterDropFwdWAN, false},
		{"prefix rule: anything to the servers /64 accepted", l4(wan, lan, inetHost, a("2001:db8:1000:110::42"), UDP, 40000, 9999), Accept, CounterInboundPrefix, false},
		{"prefix rule: next /64 not covered", l4(wan, lan, inetHost, a("2001:db8:1000:111::42"), UDP, 40000, 9999), Drop, CounterDropFwdWAN, false},
		{"host rule: udp/51820 to the host's privacy address accepted", l4(wan, lan, inetHost, serverPriv, UDP, 40000, 51820), Accept, CounterInboundHost, false},
		{"host rule: tcp/51820 to the host dropped", l4(wan, lan, inetHost, serverPriv, TCP, 40000, 51820), Drop, CounterDropFwdWAN, false},
		{"host rule: udp/51820 to another host dropped", l4(wan, lan, inetHost, lanHost, UDP, 40000, 51820), Drop, CounterDropFwdWAN, false},

		// NAT44 and NAT64 interplay.
		{"NAT44 only for the legacy pool: IPv6 never masqueraded", l4(lan, wan, lanHost, inetHost, UDP, 40000, 53), Accept, CounterIPv6Forwarded, false},

		// RFC 3704 ingress filtering: the gizmo's own and unspecified sources.
		{"RFC 3704: LAN IPv4 source equal to the WAN address is not forwarded", l4(lan, wan, gizmoWAN4, inetHost4, UDP, 40000, 53), Drop, CounterDropLANWAN, false},
		{"RFC 3704: LAN IPv6 source equal to the WAN address is not forwarded", l4(lan, wan, gizmoWAN6, inetHost, TCP, 40000, 443), Drop, CounterDropLANWAN, false},
		{"RFC 3704: LAN source equal to the WAN address does not reach the gizmo", l4(lan, "", gizmoWAN6, a("2001:db8:1000:100::1"), TCP, 40000, 80), Drop, CounterDropLANWAN, false},
		{"RFC 3704: LAN IPv4 source equal to the WAN address does not reach the gizmo", l4(lan, "", gizmoWAN4, a("203.0.113.129"), UDP, 40000, 53), Drop, CounterDropLANWAN, false},
		{"RFC 4291 2.5.2: :: is never forwarded", l4(lan, wan, a("::"), inetHost, UDP, 40000, 53), Drop, CounterDropSpoofLAN, false},
		{"RFC 4291 2.5.2: ICMPv6 from :: is never forwarded either", icmp6(lan, wan, a("::"), inetHost, 128, 0), Drop, CounterDropSpoofLAN, false},
		{"RFC 2131 4.1: 0.0.0.0 is never forwarded", l4(lan, wan, a("0.0.0.0"), inetHost4, UDP, 68, 67), Drop, CounterDropSpoofLAN, false},
		{"RFC 4862 5.4: :: to the gizmo only for ICMPv6", l4(lan, "", a("::"), a("2001:db8:1000:100::1"), UDP, 40000, 53), Drop, CounterDropSpoofLAN, false},
		{"RFC 3810 5.2.13: MLDv2 report from :: accepted", icmp6(lan, "", a("::"), a("ff02::16"), 143, CtInvalid), Accept, "", false},
		{"RFC 2131 4.1: 0.0.0.0 to the DNS server dropped", l4(lan, "", a("0.0.0.0"), a("203.0.113.129"), UDP, 68, 53), Drop, CounterDropSpoofLAN, false},
		{"RFC 2131 4.1: TCP from 0.0.0.0 dropped", l4(lan, "", a("0.0.0.0"), a("203.0.113.129"), TCP, 40000, 80), Drop, CounterDropSpoofLAN, false},

		// RFC 9293 3.5: a flow conntrack does not know opens with SYN.
		{"RFC 9293 3.5: inbound ACK conntrack does not know dropped, even to an open port",
			packet{iif: wan, oif: lan, src: inetHost, dst: serverTok, proto: TCP, sport: 40000, dport: 443, tcpFlags: TCPAck}, Drop, CounterDropNotSyn, false},
		{"RFC 9293 3.5: a LAN host's segment conntrack does not know is not forwarded",
			packet{iif: lan, oif: wan, src: serverTok, dst: inetHost, proto: TCP, sport: 443, dport: 40000, tcpFlags: TCPAck | 0x08}, Drop, CounterDropNotSyn, false},
		{"RFC 3168: a SYN with ECE and CWR opens a flow", packet{iif: lan, oif: wan, src: lanHost, dst: inetHost, proto: TCP, sport: 40000, dport: 443, tcpFlags: TCPSyn | 0xc0}, Accept, CounterIPv6Forwarded, false},
		{"an established flow's ACK is forwarded", packet{iif: lan, oif: wan, src: lanHost, dst: inetHost, proto: TCP, sport: 40000, dport: 443, tcpFlags: TCPAck, ct: CtEstablished}, Accept, CounterIPv6Forwarded, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rs.path(tc.pkt)
			got.check(t, tc.want, tc.counter)
			if got.masq != tc.masq {
				t.Errorf("masquerade = %v, want %v", got.masq, tc.masq)
			}
		})
	}
}

// RFC 7278: where the LAN shares the WAN's /64, the gizmo's own WAN address
// is inside a LAN prefix, and still no LAN source.
func TestRenderWANAddressInSharedPrefix(t *testing.T) {
	p := labPlan()
	p.Shared = []netip.Prefix{q("2001:db8:0:1::/64")}
	rs := Render(p)
	if got := rs.path(packet{iif: lan, oif: wan, src: gizmoWAN6, dst: inetHost, proto: UDP, sport: 4000, dport: 53}); got.verdict != Drop || !slices.Contains(got.counters, CounterDropLANWAN) {
		t.Errorf("the WAN address from the LAN: %+v, want drop counted %s", got, CounterDropLANWAN)
	}
	if got := rs.path(packet{iif: lan, oif: wan, src: a("2001:db8:0:1::5"), dst: inetHost, proto: UDP, sport: 4000, dport: 53}); got.verdict != Accept {
		t.Errorf("a LAN host in the shared /64: %+v, want accept", got)
	}
}

func TestRenderNAT64Mark(t *testing.T) {
	p := labPlan()
	translated := packet{iif: wan, oif: lan, src: a("2001:db8:64::c633:6450"), dst: lanHost, proto: UDP, sport: 53, dport: 40000, mark: 0x64}
	if got := Render(p).path(translated); got.verdict != Drop {
		t.Errorf("without NAT64Mark: verdict %v, want drop", got.verdict)
	}
	p.NAT64Mark = 0x64
	got := Render(p).path(translated)
	if got.verdict != Accept || !slices.Contains(got.counters, CounterNAT64Passed) {
		t.Errorf("with NAT64Mark: %+v, want accept counted %s", got, CounterNAT64Passed)
	}
	translated.mark = 0
	if got := Render(p).path(translated); got.verdict != Drop {
		t.Errorf("unmarked packet from Pref64: verdict %v, want drop", got.verdict)
	}
}

// Renumbering: a token rule names no prefix, so it matches in the new
// delegation as soon as the new ruleset is rendered, and not in the old one
// once that is gone.
func TestRenderTokenRuleSurvivesRenumbering(t *testing.T) {
	p := labPlan()
	p.Delegated = q("2001:db8:1000:200::/56")
	p.LANPrefixes = []netip.Prefix{q("2001:db8:1000:200::/64"), q("fd12:3456:789a::/64")}
	p.PrefixRules = nil
	p.HostRules = nil
	rs := Render(p)
	in := func(dst string) VerdictKind {
		return rs.path(packet{iif: wan, oif: lan, src: inetHost, dst: a(dst), proto: TCP, sport: 40000, dport: 443}).verdict
	}
	if v := in("2001:db8:1000:200::80"); v != Accept {
		t.Errorf("::80 in the new /64: %v, want accept", v)
	}
	if v := in("2001:db8:1000:100::80"); v != Drop {
		t.Errorf("::80 in the old /64: %v, want drop", v)
	}
	// BCP 38 follows too: the old prefix is now spoofed from the LAN.
	old := rs.path(packet{iif: lan, oif: wan, src: a("2001:db8:1000:100::5"), dst: inetHost, proto: TCP, dport: 443})
	if old.verdict != Drop {
		t.Errorf("old LAN prefix as source after renumbering: %v, want drop", old.verdict)
	}
	// Unless it is still being phased out (RFC 9096).
	p.LANPrefixes = append(p.LANPrefixes, q("2001:db8:1000:100::/64"))
	p.Retired = []netip.Prefix{q("2001:db8:1000:100::/56")}
	if got := Render(p).path(packet{iif: lan, oif: wan, src: a("2001:db8:1000:100::5"), dst: inetHost, proto: TCP, dport: 443}); got.verdict != Accept {
		t.Errorf("retired LAN prefix as source: %v, want accept", got.verdict)
	}
}

// Sets, not rules: the rule count is the same for one host or a thousand
// (it depends only on interfaces and on how many prefix lengths the prefix
// rules use).
func TestRenderRuleCountDoesNotGrowWithHosts(t *testing.T) {
	p := labPlan()
	base := Render(p).RuleCount()
	for i := range 1000 {
		p.HostRules = append(p.HostRules, HostRule{
			Host:  fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff),
			Addrs: []netip.Addr{a(fmt.Sprintf("2001:db8:1000:100::%x", 0x1000+i)), a(fmt.Sprintf("2001:db8:1000:100:%x::1", 0x1000+i))},
			Ports: []Port{{TCP, 443}, {UDP, 443}},
		})
		p.TokenRules = append(p.TokenRules, TokenRule{Token: a(fmt.Sprintf("::%x", 0x1000+i)), Ports: []Port{{TCP, 22}}})
	}
	rs := Render(p)
	if got := rs.RuleCount(); got != base {
		t.Errorf("rules with 1000 hosts = %d, with one = %d", got, base)
	}
	if n := len(rs.Set(setInboundHost).Services); n != 2+4000 {
		t.Errorf("inbound_host elements = %d, want %d", n, 2+4000)
	}
}

func TestMergePrefixes(t *testing.T) {
	got := mergePrefixes([]netip.Prefix{q("fd12:3456:789a::/64"), q("2001:db8::/32"), q("fd12:3456:789a::/48"), q("2001:db8:1::/48"), q("2001:db8::/32")})
	want := []netip.Prefix{q("2001:db8::/32"), q("fd12:3456:789a::/48")}
	if !slices.Equal(got, want) {
		t.Errorf("mergePrefixes = %v, want %v", got, want)
	}
}

// Prefixes of different lengths go to one set per length, each looked up
// with its own mask; a prefix inside another is dropped.
func TestPrefixSets(t *testing.T) {
	got := prefixSets("x", SetIPv6Prefixes, []netip.Prefix{q("2001:db8:1:10::/64"), q("2001:db8:1::/56"), q("2001:db8:2::/64"), q("fd00:1::/48")})
	want := []Set{
		{Name: "x_48", Kind: SetIPv6Prefixes, Bits: 48, Prefixes: []netip.Prefix{q("fd00:1::/48")}},
		{Name: "x_56", Kind: SetIPv6Prefixes, Bits: 56, Prefixes: []netip.Prefix{q("2001:db8:1::/56")}},
		{Name: "x_64", Kind: SetIPv6Prefixes, Bits: 64, Prefixes: []netip.Prefix{q("2001:db8:2::/64")}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("prefixSets (-want +got):\n%s", diff)
	}
}
