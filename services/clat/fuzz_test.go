package clat

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// The programs are the parsers of outside input here: the fuzz targets
// throw arbitrary packets at them through BPF_PROG_TEST_RUN. Whatever
// comes in, the verdict is next, pass, drop or redirect, and a packet the
// CLAT translated is a well-formed IPv4 or IPv6 packet with correct
// checksums.
func fuzzProgram(f *testing.F, out bool, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	h := newHarness(f, testPlan())
	f.Fuzz(func(t *testing.T, l3 []byte) {
		if len(l3) < 40 || len(l3) > 3000 {
			return // the kernel's test run takes a full IP header, at most a page
		}
		h.t = t
		if out {
			l3[0] = 0x40 | l3[0]&0x0f
		} else {
			l3[0] = 0x60 | l3[0]&0x0f
		}
		// Checksums are updated, not recomputed: one that was wrong
		// coming in stays wrong.
		_, inErr := parseErr(l3)
		ret, res := h.run(out, l3)
		switch {
		case ret == bpftest.ActShot || ret == bpftest.ActNext:
		case out && ret == bpftest.ActRedirect, !out && ret == bpftest.ActOK:
			p, err := parseHeader(res)
			if err == nil && inErr == nil {
				err = checkL4(p)
			}
			if err != nil || p.v6 != out {
				t.Fatalf("translated packet: %v (IPv6 %v)\n% x", err, p.v6, res)
			}
		default:
			t.Fatalf("verdict %d", ret)
		}
	})
}

func FuzzOut(f *testing.F) {
	fuzzProgram(f, true, [][]byte{
		pkt4(IPv4, remote4, seg{Proto: pUDP, SPort: 53, DPort: 53, Payload: []byte("hello, world, hello, world")}),
		pkt4(IPv4, remote4, seg{Proto: pTCP, SPort: 1, DPort: 80, Flags: 2, TCPOpts: mss(1460)}),
		pkt4(IPv4, remote4, seg{Proto: pICMP, Type: 8, ID: 1, Payload: make([]byte, 24)}),
		pkt4(IPv4, remote4, seg{Proto: pICMP, Type: 3, Code: 3, Payload: pkt4(remote4, IPv4, seg{Proto: pUDP, SPort: 53, DPort: 53})}),
	})
}

func FuzzIn(f *testing.F) {
	fuzzProgram(f, false, [][]byte{
		pkt6(to6(remote4), testCLAT6, seg{Proto: pUDP, SPort: 53, DPort: 53, Payload: []byte("hello")}),
		pkt6(to6(remote4), testCLAT6, seg{Proto: pTCP, SPort: 80, DPort: 1, Flags: 0x12, TCPOpts: mss(1440)}),
		pkt6(to6(remote4), testCLAT6, seg{Proto: pICMP, Type: 129, ID: 1}),
		pkt6(router6, testCLAT6, seg{Proto: pICMP, Type: 2, Rest: 1400, Payload: pkt6(testCLAT6, to6(remote4), seg{Proto: pUDP, SPort: 53, DPort: 53})}),
	})
}
