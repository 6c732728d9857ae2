package nat64

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The peer's siit cases test a stateless translator (RFC 7915 alone). The
// header translation core is the same in a stateful NAT64, so the cases
// are replayed with a stateful setup that behaves like the stateless one
// for each exchange:
//   - the prefix is the peer's 2001:db8:100::/40;
//   - the pool address is the IPv4 form of the IPv6 node of the case, so
//     that its address translates as the stateless peer's would;
//   - a static binding maps that node's port to the same pool port
//     (stateless translation keeps ports), and static bindings accept
//     packets from any IPv4 host, as the stateless peer does;
//   - before an ICMP error, a packet of the quoted flow opens the session
//     that stateful translation needs to find the inner packet's owner.
//
// Cases that need what only a stateless translator has (explicit address
// mappings, RFC 7757; the RFC 6791 source for untranslatable errors; IPv4
// addresses outside the pool) are reported as not applicable.
var siitPrefix = netip.MustParsePrefix("2001:db8:100::/40")

func siitPlan(pool netip.Addr) Plan {
	return Plan{
		Pool4:       pool,
		Pref64:      siitPrefix,
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")},
		Router6:     netip.MustParseAddr("2001:db8:1c0:2:21::"),
		LANIfindex:  1, WANIfindex: 1,
		LANMTU: 1500, WANMTU: 1500,
		PortsLow:  PortRange{1, 1023},
		PortsHigh: PortRange{1024, 65535},
	}
}

func extract(p netip.Prefix, a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	if !p.Contains(a) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{b[5], b[6], b[7], b[9]}), true
}

type flow struct {
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16
}

// end is the flow's source address and port when src, its destination's
// otherwise.
func (f flow) end(src bool) (netip.Addr, uint16) {
	if src {
		return f.src, f.sport
	}
	return f.dst, f.dport
}

// l4flow reads addresses and ports of an IP packet (ICMP: identifier).
func l4flow(b []byte) (flow, []byte, bool) {
	var f flow
	var l4 []byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&0xf) * 4
		if len(b) < ihl+8 {
			return f, nil, false
		}
		f.proto = b[9]
		f.src, f.dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:]
	case len(b) >= 48 && b[0]>>4 == 6:
		f.proto = b[6]
		f.src, f.dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
		if f.proto == 44 {
			f.proto = l4[0]
			l4 = l4[8:]
		}
		if f.proto == 58 {
			f.proto = ProtoICMP
		}
	default:
		return f, nil, false
	}
	if len(l4) < 8 {
		return f, nil, false
	}
	if f.proto == ProtoICMP {
		f.sport = binary.BigEndian.Uint16(l4[4:])
		f.dport = f.sport
	} else {
		f.sport, f.dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	}
	return f, l4, true
}

func isICMPError(b []byte) bool {
	f, l4, ok := l4flow(b)
	if !ok || f.proto != ProtoICMP {
		return false
	}
	if b[0]>>4 == 4 {
		return l4[0] == 3 || l4[0] == 11 || l4[0] == 12
	}
	return l4[0] >= 1 && l4[0] <= 4
}

var siitNotApplicable = map[string]string{
	"eam":  "explicit address mappings (RFC 7757) are stateless-only",
	"6791": "an RFC 6791 source address for untranslatable ICMP errors is stateless-only; a NAT64 sends them from its pool",
}

// eam reports addresses of the peer's explicit address mappings.
func eam(a netip.Addr) bool {
	for _, p := range []string{"1.0.0.0/24", "10.0.0.0/24", "2001:db8:3::/120", "2001:db8:2::/120"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

func TestJoolGrayboxSIIT(t *testing.T) {
	dir, cases := grayboxSuite(t, "siit")
	var results []caseResult
	h := newHarness(t, siitPlan(netip.MustParseAddr("192.0.2.33")), 0)
	var na []string
	for _, c := range cases {
		in, err := os.ReadFile(filepath.Join(dir, c.send))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(c.send, "6791") {
			na = append(na, c.name()+"\t"+siitNotApplicable["6791"])
			continue
		}
		// Which IPv4 address stands for the IPv6 node in this exchange.
		fromV6 := c.sendNS == "v6"
		// Non-first fragments have no ports: what l4flow reads there
		// is payload, harmless for the binding it sets up.
		f, l4, _ := l4flow(in)
		node, nodePort := f.end(fromV6)
		inner := []byte(nil)
		if isICMPError(in) {
			inner = l4[8:]
			if fi, _, ok := l4flow(inner); ok {
				// The quoted packet went to (from v6) or came from
				// (from v4) the node.
				node, nodePort = fi.end(!fromV6)
				f = fi
			}
		}
		var pool netip.Addr
		if node.Is6() {
			a, ok := extract(siitPrefix, node)
			if !ok {
				na = append(na, c.name()+"\t"+siitNotApplicable["eam"])
				continue
			}
			pool = a
		} else {
			pool = node
		}
		if !pool.IsValid() || eam(pool) || eam(f.src) || eam(f.dst) {
			na = append(na, c.name()+"\t"+siitNotApplicable["eam"])
			continue
		}
		plan := siitPlan(pool)
		if len(c.expect) > 1 {
			// The peer fragments to the IPv6 minimum MTU (RFC
			// 7915 §4); the gizmo to its LAN MTU: 1280 here.
			plan.LANMTU = 1280
		}
		if err := h.dp.configure(plan, flagNoFIB|flagFakeClock, h.now); err != nil {
			t.Fatal(err)
		}
		node6 := node
		if node.Is4() {
			node6 = embedRef(siitPrefix, node)
			if !node6.IsValid() {
				t.Fatalf("%s: no IPv6 form for %v", c.name(), node)
			}
		}
		if f.proto == ProtoTCP || f.proto == ProtoUDP || f.proto == ProtoICMP {
			h.dp.addStatic(StaticBinding{Proto: f.proto, Host: netip.AddrPortFrom(node6, nodePort), PoolPort: nodePort})
		}
		if inner != nil {
			// Open the session of the quoted flow from the IPv6 side.
			remote, rport := f.end(fromV6)
			r6 := remote
			if remote.Is4() {
				r6 = embedRef(siitPrefix, remote)
			}
			s := seg{Proto: f.proto, SPort: nodePort, DPort: rport, Flags: 0x02}
			if f.proto == ProtoICMP {
				s = seg{Proto: ProtoICMP, ID: nodePort, Type: 128}
			}
			h.send(true, pkt6(node6, r6, s))
		}
		results = append(results, replay(t, h, dir, c))
	}
	for _, n := range na {
		t.Logf("not applicable: %s", n)
	}
	if out := os.Getenv("GIZMO_CONFORMANCE_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range na {
			parts := strings.SplitN(n, "\t", 2)
			f.WriteString(parts[0] + "\tn/a\t" + parts[1] + "\t\n")
		}
		f.Close()
	}
	checkResults(t, results, siitDifferent)
}

// siitDifferent gives the reason for the siit cases the gizmo answers
// differently, by the peer's case groups (file name prefixes).
func siitDifferent(name string) (string, bool) {
	c := strings.TrimPrefix(name, "siit/7915/")
	if c == name {
		return "", false
	}
	for _, g := range []struct{ prefixes, reason string }{
		{"act", "Fragmented ICMPv6: its checksum covers the whole message, which a per-packet translator cannot fix without reassembly. Dropped and counted (unsupported); the stateless peer answers admin-prohibited."},
		{"adt2", "A fragment header followed by No Next Header has no transport to map; a stateful NAT64 handles TCP, UDP and ICMP only (RFC 6146 §3). Dropped and counted."},
		{"cat cgt", "The peer ran these with a smaller link MTU so that it answers with its own ICMP size error; the replay runs with 1500 on both sides and translates the packet. Size errors are checked by the nat64 icmp-error cases and TestRFC7915PacketTooBig."},
		{"cct cft jba jca", "IPv4 without DF, too big for the IPv6 side: two fragments (RFC 7915 §4). The gizmo splits it too (bpf/frag.h), but hands the tail back to the WAN's ingress with bpf_clone_redirect, which a test run without interfaces leaves out: the replay (LAN MTU 1280, the peer's minimum) compares the first packet only, which is the peer's for cct1, cft1 and jbat (jcat's peer used a 1400-byte minimum). TestNetnsRFC7915FragmentsWithoutDF checks whole datagrams in namespaces."},
		{"eat", "IPv4 UDP with checksum zero: RFC 7915 §4.5 lets a stateless translator drop it; the gizmo, stateful, computes the checksum and translates (as §4.5 asks when the datagram is whole)."},
		{"ect", "Fragmented IPv4 UDP with checksum zero: the checksum cannot be computed without reassembly; dropped and counted (RFC 7915 §4.5 allows it), without the peer's admin-filtered error."},
		{"fat fbt", "DCCP: a stateful NAT64 maps TCP, UDP and ICMP only (RFC 6146 §3); IPv4 DCCP goes to the kernel, IPv6 DCCP is dropped and counted."},
		{"ia ib ic1 ic2 ic3 ic4 ic5 ic7 id", "ICMP extensions (RFC 4884, RFC 7915 §4.2 and §5.2) are not translated: the length attribute is set to zero and the message is cut at 576/1280 bytes without moving the extension structure."},
	} {
		for _, p := range strings.Fields(g.prefixes) {
			if strings.HasPrefix(c, p) {
				return g.reason, true
			}
		}
	}
	return "", false
}
