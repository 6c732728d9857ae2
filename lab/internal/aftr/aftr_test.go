package aftr

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"codeberg.org/monostack/gizmo/internal/testns"
	"github.com/cilium/ebpf"
)

// TestSoftwire runs the programs on packets (BPF_PROG_TEST_RUN): IPv4 to
// the softwire before any B4 is heard is dropped; IPv4-in-IPv6 to the
// AFTR is decapsulated and teaches the B4; then IPv4 to 192.0.0.2 is
// encapsulated to it.
func TestSoftwire(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.New(t, "aftr")
	testns.IP(t, "-n", ns, "link", "add", "isp0", "type", "veth", "peer", "name", "isp1")
	testns.IP(t, "-n", ns, "link", "set", "isp0", "up")
	testns.Sysctl(t, ns, "net.ipv6.conf.all.forwarding=1")
	aftrAddr := netip.MustParseAddr("2001:db8:0:5::1")
	b4 := netip.MustParseAddr("2001:db8:0:1::b4")
	var a *AFTR
	testns.Inside(t, ns, func() {
		var err error
		if a, err = Start("isp0", aftrAddr); err != nil {
			t.Fatal(err)
		}
	})
	defer a.Close()

	ipv4 := func(src, dst string) []byte {
		h := make([]byte, 28)
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], 28)
		h[8], h[9] = 64, 17
		copy(h[12:], netip.MustParseAddr(src).AsSlice())
		copy(h[16:], netip.MustParseAddr(dst).AsSlice())
		return h
	}
	run := func(p *ebpf.Program, etype uint16, l3 []byte) (uint32, []byte) {
		frame := append(make([]byte, 12), byte(etype>>8), byte(etype))
		return bpftest.Run(t, p, append(frame, l3...))
	}
	back := ipv4("198.51.100.80", "192.0.0.2")
	if ret, _ := run(a.objs.AftrOut, 0x0800, back); ret != 2 {
		t.Errorf("IPv4 to the softwire without a B4: verdict %d, want TC_ACT_SHOT", ret)
	}
	inner := ipv4("192.0.0.2", "198.51.100.80")
	outer := make([]byte, 40)
	outer[0], outer[6], outer[7] = 0x60, 4, 64
	binary.BigEndian.PutUint16(outer[4:], uint16(len(inner)))
	copy(outer[8:], b4.AsSlice())
	copy(outer[24:], aftrAddr.AsSlice())
	if _, out := run(a.objs.AftrIn, 0x86dd, append(outer, inner...)); !bytes.Equal(out[14:], inner) || binary.BigEndian.Uint16(out[12:]) != 0x0800 {
		t.Errorf("decapsulated % x", out)
	}
	s, err := a.Softwire()
	if err != nil || s.B4 != b4 || s.Decapsulated != 1 || s.NoB4 != 1 {
		t.Fatalf("softwire %+v, %v", s, err)
	}
	// The veth has no neighbours: the program asks the kernel
	// to resolve the B4, after writing the outer header.
	_, out := run(a.objs.AftrOut, 0x0800, back)
	if len(out) < 14+40 || out[14+6] != 4 || netip.AddrFrom16([16]byte(out[14+24:14+40])) != b4 || !bytes.Equal(out[14+40:], back) {
		t.Errorf("encapsulated % x", out)
	}
	if ret, _ := run(a.objs.AftrOut, 0x0800, ipv4("198.51.100.80", "203.0.113.5")); ret != 1<<32-1 {
		t.Errorf("IPv4 elsewhere: verdict %d, want TCX_NEXT", ret)
	}
}
