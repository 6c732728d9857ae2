package nat64

import (
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// chain runs a packet through both programs in the order datapath.attach
// puts them on a shared tcx ingress hook (existing-network mode: one port,
// lan0 == uplink0), the way tcx_run does: a program's TC_ACT_UNSPEC
// (TCX_NEXT) hands the packet to the next one, any other verdict ends the
// chain, and NEXT after the last program is pass.
func (h *harness) chain(l3 []byte) (uint32, []byte) {
	h.t.Helper()
	ret, out := h.run(true, l3)
	if ret != bpftest.ActNext {
		return ret, out
	}
	return h.run(false, l3)
}

// A program returns TC_ACT_UNSPEC for every packet that is not NAT64
// traffic, so that on a shared hook the other program still sees it
// (TC_ACT_OK, TCX_PASS, would end the chain). Packets that are its own
// but left to the kernel keep TC_ACT_OK.
func TestTCXNotOursIsNext(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	const syn = 0x02
	for _, c := range []struct {
		name    string
		fromLAN bool
		l3      []byte
		want    uint32
	}{
		{"IPv4 into the LAN program", true, pkt4(remote1, pool, seg{Proto: ProtoTCP, SPort: 80, DPort: 2999, Flags: syn}), bpftest.ActNext},
		{"IPv6 into the WAN program", false, pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 1, DPort: 2}), bpftest.ActNext},
		{"native IPv6", true, pkt6(hostA, netip.MustParseAddr("2001:db8:ffff::6"), seg{Proto: ProtoUDP, SPort: 1, DPort: 2}), bpftest.ActNext},
		{"IPv4 not to the pool address", false, pkt4(remote1, netip.MustParseAddr("192.0.2.1"), seg{Proto: ProtoUDP, SPort: 1, DPort: 2}), bpftest.ActNext},
		// Ours, deliberately left to the kernel (RFC 6146 §3.5.2.2):
		// it ends the chain, which only skips the LAN program's
		// NEXT for a packet that is not IPv6.
		{"IPv4 to a pool port without binding", false, pkt4(remote1, pool, seg{Proto: ProtoTCP, SPort: 80, DPort: 2999, Flags: syn}), bpftest.ActOK},
	} {
		if ret, _ := h.run(c.fromLAN, c.l3); ret != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, ret, c.want)
		}
	}
}

// The one-armed session of the existing-network mode: the SYN goes out
// through the LAN program, the SYN-ACK comes back on the same hook and must
// reach the WAN program behind it, whichever program is first.
func TestTCXOneArmedReplyReachesWANProgram(t *testing.T) {
	p := testPlan()
	h := newHarness(t, p, 0)
	const syn, ack = 0x02, 0x10
	ret, b := h.chain(pkt6(hostA, to6(p, remote1), seg{Proto: ProtoTCP, SPort: 40000, DPort: 80, Flags: syn}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("SYN: verdict %d, want redirect", ret)
	}
	o := parse(t, b)
	ret, b = h.chain(pkt4(remote1, pool, seg{Proto: ProtoTCP, SPort: 80, DPort: o.sport, Flags: syn | ack}))
	if ret != bpftest.ActRedirect {
		t.Fatalf("SYN-ACK: verdict %d, want redirect (translated by the WAN program)", ret)
	}
	if got := parse(t, b); got.dst != hostA || got.dport != 40000 {
		t.Errorf("SYN-ACK translated to %v port %d, want %v port 40000", got.dst, got.dport, hostA)
	}
	// The other order on the hook: the WAN program first.
	ret, _ = h.run(false, pkt6(hostA, to6(p, remote1), seg{Proto: ProtoTCP, SPort: 40000, DPort: 80, Flags: ack}))
	if ret != bpftest.ActNext {
		t.Errorf("IPv6 ACK into the WAN program: verdict %d, want next", ret)
	}
}
