package nat64

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// harness runs the programs with BPF_PROG_TEST_RUN on packets built by the
// tests: no namespaces, no interfaces, a clock the test moves.
type harness struct {
	t   testing.TB
	dp  *datapath
	now uint64
	// src is the Ethernet source of the packets run: the LAN host
	// that sent them (macB unless a test sets it).
	src []byte
}

func newHarness(t testing.TB, p Plan, maxSessions int) *harness {
	t.Helper()
	dp := bpftest.Load(t, func() (*datapath, error) { return loadDatapath("", maxSessions) }, func(dp *datapath) { dp.close(false) })
	h := &harness{t: t, dp: dp, now: uint64(1000e9), src: macB}
	if err := dp.configure(p, flagNoFIB|flagFakeClock, h.now); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) advance(d uint64) {
	h.t.Helper()
	h.now += d
	if err := h.dp.setClock(h.now); err != nil {
		h.t.Fatal(err)
	}
}

var (
	macA = []byte{0x02, 0, 0, 0, 0, 0xa}
	macB = []byte{0x02, 0, 0, 0, 0, 0xb}
)

// run sends one L3 packet into the LAN (v6) or WAN (v4) program and
// returns the verdict and the L3 packet after the program.
func (h *harness) run(fromLAN bool, l3 []byte) (uint32, []byte) {
	h.t.Helper()
	prog := h.dp.objs.Nat64Wan
	if fromLAN {
		prog = h.dp.objs.Nat64Lan
	}
	return h.runProg(prog, l3)
}

// runProg runs one L3 packet through prog: nat64_lan4 for IPv4 from the
// LAN's own devices, or one of the two above.
func (h *harness) runProg(prog *ebpf.Program, l3 []byte) (uint32, []byte) {
	h.t.Helper()
	ret, out := bpftest.Run(h.t, prog, bpftest.Frame(macA, h.src, l3))
	var l3out []byte
	if len(out) >= 14 {
		l3out = out[14:]
	}
	return ret, l3out
}

// send runs a packet through the translator the way the kernel would:
// a hairpinned IPv4 packet (redirected to the WAN's ingress) goes through
// the WAN program too.
func (h *harness) send(fromLAN bool, l3 []byte) (uint32, []byte) {
	h.t.Helper()
	ret, out := h.run(fromLAN, l3)
	if fromLAN && ret == bpftest.ActRedirect && len(out) >= 20 && out[0]>>4 == 4 {
		dst := netip.AddrFrom4([4]byte(out[16:20]))
		if dst == addr4(h.dp.cur.Pool4) {
			return h.run(false, out)
		}
	}
	return ret, out
}

func (h *harness) counter(name string) uint64 {
	h.t.Helper()
	return bpftest.Counter(h.t, h.dp.counters, name)
}
