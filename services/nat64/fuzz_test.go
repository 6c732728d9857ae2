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
		h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 53, DPort: 53})
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
		pkt6(hostA, to6(p, remote1), seg{Proto: ProtoUDP, SPort: 53, DPort: 53, Payload: []byte("hello")}),
		pkt6(hostA, to6(p, remote1), seg{Proto: ProtoTCP, SPort: 1, DPort: 80, Flags: 2}),
		pkt6(hostA, to6(p, remote1), seg{Proto: ProtoICMP, ID: 1, Type: 128}),
		pkt6(hostA, to6(p, remote1), seg{Proto: ProtoICMP, Type: 1, Code: 4, Payload: pkt6(to6(p, remote1), hostA, seg{Proto: ProtoUDP, SPort: 53, DPort: 53})}),
	})
}

func FuzzWANProgram(f *testing.F) {
	fuzzProgram(f, false, [][]byte{
		pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: 53, Payload: []byte("hello")}),
		pkt4(remote1, pool, seg{Proto: ProtoUDP, SPort: 53, DPort: 53, NoChecksum: true}),
		pkt4(remote1, pool, seg{Proto: ProtoICMP, ID: 53, Type: 8}),
		pkt4(remote1, pool, seg{Proto: ProtoICMP, Type: 3, Code: 3, Payload: pkt4(pool, remote1, seg{Proto: ProtoUDP, SPort: 53, DPort: 53})}),
	})
}
