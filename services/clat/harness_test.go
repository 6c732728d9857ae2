package clat

import (
	"net"
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

var (
	testPref64 = netip.MustParsePrefix("2001:db8:46::/96")
	testCLAT6  = netip.MustParseAddr("2001:db8:1000:ff::464")
	remote4    = netip.MustParseAddr("198.51.100.80")
	router6    = netip.MustParseAddr("2001:db8:0:1::1") // a router on the way to the NAT64
)

func testPlan() Plan {
	return Plan{Pref64: testPref64, Address: testCLAT6, WANIfindex: 1, WANMTU: 1500}
}

// to6 is an IPv4 address in the test prefix (RFC 6052 /96).
func to6(a netip.Addr) netip.Addr {
	b := testPref64.Addr().As16()
	copy(b[12:], a.AsSlice())
	return netip.AddrFrom16(b)
}

// harness runs the programs with BPF_PROG_TEST_RUN on packets built by the
// tests: no namespaces, no interfaces, no routing table.
type harness struct {
	t  testing.TB
	dp *datapath
}

func newHarness(t testing.TB, p Plan) *harness {
	t.Helper()
	dp := bpftest.Load(t, loadDatapath, func(dp *datapath) { dp.close() })
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := dp.configure(p, 1, flagNoFIB); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, dp: dp}
}

// run sends one L3 packet to clat_out (out) or clat_in and returns the
// verdict and the L3 packet after the program.
func (h *harness) run(out bool, l3 []byte) (uint32, []byte) {
	h.t.Helper()
	prog := h.dp.objs.In
	if out {
		prog = h.dp.objs.Out
	}
	in := bpftest.Frame(net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, l3)
	ret, frame := bpftest.Run(h.t, prog, in)
	var l3out []byte
	if len(frame) >= 14 {
		l3out = frame[14:]
		et := uint16(frame[12])<<8 | uint16(frame[13])
		if len(l3out) > 0 && (l3out[0]>>4 == 6) != (et == 0x86dd) {
			h.t.Fatalf("EtherType %#04x does not match IP version %d", et, l3out[0]>>4)
		}
	}
	return ret, l3out
}

func (h *harness) counter(name string) uint64 {
	h.t.Helper()
	return bpftest.Counter(h.t, h.dp.counters, name)
}

// wantDropped runs the L3 packet l3 out (or in) and checks that the
// program dropped it and counted it once under counter.
func (h *harness) wantDropped(t *testing.T, out bool, l3 []byte, counter string) {
	t.Helper()
	before := h.counter(counter)
	if ret, _ := h.run(out, l3); ret != bpftest.ActShot {
		t.Fatalf("verdict %d, want drop", ret)
	}
	if got := h.counter(counter); got != before+1 {
		t.Errorf("%s went from %d to %d, want one more", counter, before, got)
	}
}
