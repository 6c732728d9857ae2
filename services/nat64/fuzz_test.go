package nat64

import (
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// The BPF programs are the parsers of outside input here: the fuzz targets
// throw arbitrary packets at them through BPF_PROG_TEST_RUN. Whatever comes
// in, the verdict is next, pass, drop or redirect, and a redirected packet is a
// well-formed IPv4 or IPv6 packet with correct checksums.
func fuzzProgram(f *testing.F, fromLAN bool, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	// One datapath for all inputs: loading it is what takes time, and
	// the state the inputs leave behind is part of what is fuzzed.
	p := testPlan()
	h := newHarness(f, p, 256)
	if err := h.dp.addStatic(StaticBinding{Proto: ProtoUDP, Host: netip.AddrPortFrom(hostA, 53), PoolPort: 53}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, l3 []byte) {
		if len(l3) < 40 || len(l3) > 3000 {
			return // the kernel's test run takes a full IP header, at most a page
		}
		h.t = t
		h.out(t, p, hostA, remote1, seg{proto: ProtoUDP, sport: 53, dport: 53})
		if fromLAN {
			l3[0] = 0x60 | l3[0]&0x0f
		} else {
			l3[0] = 0x40 | l3[0]&0x0f
		}
		ret, out := h.send(fromLAN, l3)
		switch ret {
		case bpftest.ActOK, bpftest.ActShot, bpftest.ActNext:
		case bpftest.ActRedirect:
			parseOpt(t, out, false)
		default:
			t.Fatalf("verdict %d", ret)
		}
	})
}

func FuzzLANProgram(f *testing.F) {
	p := testPlan()
	fuzzProgram(f, true, [][]byte{
		pkt6(hostA, to6(p, remote1), seg{proto: ProtoUDP, sport: 53, dport: 53, payload: []byte("hello")}),
		pkt6(hostA, to6(p, remote1), seg{proto: ProtoTCP, sport: 1, dport: 80, flags: 2}),
		pkt6(hostA, to6(p, remote1), seg{proto: ProtoICMP, sport: 1, dport: 128 << 8}),
		pkt6(hostA, to6(p, remote1), seg{proto: ProtoICMP, dport: 1<<8 | 4, payload: pkt6(to6(p, remote1), hostA, seg{proto: ProtoUDP, sport: 53, dport: 53})}),
	})
}

func FuzzWANProgram(f *testing.F) {
	fuzzProgram(f, false, [][]byte{
		pkt4(remote1, pool, seg{proto: ProtoUDP, sport: 53, dport: 53, payload: []byte("hello")}),
		pkt4(remote1, pool, seg{proto: ProtoUDP, sport: 53, dport: 53, zeroCsum: true}),
		pkt4(remote1, pool, seg{proto: ProtoICMP, sport: 53, dport: 8 << 8}),
		pkt4(remote1, pool, seg{proto: ProtoICMP, dport: 3<<8 | 3, payload: pkt4(pool, remote1, seg{proto: ProtoUDP, sport: 53, dport: 53})}),
	})
}
