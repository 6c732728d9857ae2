package fastpath

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// FuzzPrograms feeds arbitrary frames to all four programs after a flow
// was established, so that the parser meets garbage in every state. The
// verdict must be one the hooks expect (the stack or a redirect), and a
// redirect only for a well-formed IPv6 packet of the established flow.
func FuzzPrograms(f *testing.F) {
	f.Add(pkt6(hostA, remote, udp(40000, 9999)))
	f.Add(pkt6(remote, hostA, udp(9999, 40000)))
	f.Add(pkt6(hostA, remote, tcp(40000, 443, tcpACK)))
	f.Add(pkt6(hostA, remote, seg{proto: 58, icmpType: 128, sport: 7}))
	f.Add(pkt6(hostA, remote, udp(40000, 9999))[:40])
	f.Add(append([]byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1}, make([]byte, 20)...))
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, l3 []byte) {
		if len(l3) < 40 || len(l3) > 1500 {
			// BPF_PROG_TEST_RUN refuses frames without a whole IP
			// header or bigger than a page; the programs' bounds
			// checks there are the verifier's to prove.
			return
		}
		h.t = t
		h.establishUDP(hostA, 40000, 9999)
		for name, r := range map[string]result{
			"fp_lan":       h.lanIngress(l3),
			"fp_wan":       h.wanIngress(l3),
			"fp_learn_wan": h.acceptOut(l3),
			"fp_learn_lan": h.acceptIn(l3),
		} {
			switch {
			case r.verdict == bpftest.ActNext:
			case r.verdict == bpftest.ActRedirect && (name == "fp_lan" || name == "fp_wan"):
				if len(l3) < 44 || l3[0]>>4 != 6 || l3[7] <= 1 {
					t.Errorf("%s redirected a packet that is not a forwardable IPv6 packet: % x", name, l3)
				}
			default:
				t.Errorf("%s: verdict %d for % x", name, r.verdict, l3)
			}
		}
	})
}
