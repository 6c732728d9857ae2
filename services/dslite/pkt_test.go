package dslite

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"github.com/cilium/ebpf"
)

var (
	testAFTR = netip.MustParseAddr("2001:db8:0:5::1")
	testB4   = netip.MustParseAddr("2001:db8:0:1::b4")
	testNH   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macGizmo = []byte{0x02, 0, 0, 0, 0, 0x0b}
	server4  = netip.MustParseAddr("198.51.100.80")
)

// harness runs the programs with BPF_PROG_TEST_RUN on packets the tests
// build: no interfaces, the next hop's MAC from the configuration.
type harness struct {
	t  testing.TB
	dp *datapath
}

func newHarness(t testing.TB, sw Softwire) *harness {
	t.Helper()
	dp := bpftest.Load(t, loadDatapath, func(dp *datapath) { dp.close() })
	if sw.Enabled() {
		c := configOf(sw)
		c.testNextHop(testNH)
		if err := dp.configure(c); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, dp: dp}
}

func testSoftwire() Softwire {
	return Softwire{AFTR: testAFTR, B4: testB4, Interface: "uplink0", Ifindex: 1, MTU: 1500}
}

// run sends one L3 packet through prog in an Ethernet frame and returns
// the verdict and the frame after the program.
func (h *harness) run(prog *ebpf.Program, l3 []byte) (uint32, []byte) {
	h.t.Helper()
	return bpftest.Run(h.t, prog, bpftest.Frame(net.HardwareAddr{0x02, 0, 0xc0, 0, 0, 1}, macGizmo, l3))
}

func (h *harness) out(l3 []byte) (uint32, []byte) { return h.run(h.dp.objs.DsliteOut, l3) }
func (h *harness) in(l3 []byte) (uint32, []byte)  { return h.run(h.dp.objs.DsliteIn, l3) }

func (h *harness) counter(name string) uint64 {
	h.t.Helper()
	return bpftest.Counter(h.t, h.dp.counters, name)
}

// csum is the Internet checksum (RFC 1071) of b, folded, not inverted.
func csum(sum uint32, b []byte) uint32 {
	return uint32(^bpftest.Checksum(b, sum))
}

// ipv4 builds an IPv4 packet with a valid header checksum.
func ipv4(src, dst netip.Addr, proto byte, tos byte, l4 []byte) []byte {
	h := make([]byte, 20)
	h[0], h[1] = 0x45, tos
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
	h[6] = 0x40 // DF
	h[8], h[9] = 64, proto
	copy(h[12:16], src.AsSlice())
	copy(h[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(h[10:], ^uint16(csum(0, h)))
	return append(h, l4...)
}

// l4sum4 is the pseudo-header sum of an IPv4 packet's upper layer.
func l4sum4(p []byte) uint32 {
	ps := append(append([]byte{}, p[12:20]...), 0, p[9], 0, 0)
	binary.BigEndian.PutUint16(ps[10:], uint16(len(p)-20))
	return csum(csum(0, ps), p[20:])
}

// tcp4 builds a TCP segment from src to dst with flags and options, with
// a valid checksum, in an IPv4 packet.
func tcp4(src, dst netip.Addr, flags byte, opts []byte, payload []byte) []byte {
	s := bpftest.Segment{Proto: 6, SPort: 40000, DPort: 80, Flags: flags, TCPOpts: opts, Payload: payload}
	return ipv4(src, dst, 6, 0, s.Bytes(src, dst))
}

// ipv6 builds an IPv6 header with next header nh in front of payload.
func ipv6(src, dst netip.Addr, nh byte, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = nh, 64
	copy(h[8:24], src.AsSlice())
	copy(h[24:40], dst.AsSlice())
	return append(h, payload...)
}

// udp4 is a UDP datagram of n zero bytes in an IPv4 packet, without a
// UDP checksum (RFC 768).
func udp4(src, dst netip.Addr, n int) []byte {
	s := bpftest.Segment{Proto: 17, SPort: 5353, DPort: 53, Payload: make([]byte, n), NoChecksum: true}
	return ipv4(src, dst, 17, 0xb8, s.Bytes(src, dst))
}

func mssOf(t *testing.T, p []byte) uint16 {
	t.Helper()
	ihl := int(p[0]&0x0f) * 4
	tcp := p[ihl:]
	if csum(l4sum4(p[:]), nil) != 0xffff {
		t.Errorf("TCP checksum wrong after the program")
	}
	m, _ := bpftest.MSS(tcp)
	return m
}

func TestEncapsulation(t *testing.T) {
	h := newHarness(t, testSoftwire())
	inner := udp4(B44, server4, 100)
	ret, out := h.out(inner)
	if ret != bpftest.ActNext {
		t.Fatalf("verdict %d, want TCX_NEXT (the kernel sends it on)", ret)
	}
	if !bytes.Equal(out[:6], testNH) || !bytes.Equal(out[6:12], macGizmo) || binary.BigEndian.Uint16(out[12:]) != 0x86dd {
		t.Errorf("Ethernet header % x, want to the next hop, EtherType IPv6", out[:14])
	}
	o := out[14:]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"RFC 2473 §3.1: version", o[0] >> 4, byte(6)},
		{"RFC 2473 §5.1 / RFC 6333 §5.5: traffic class is the inner TOS", o[0]<<4 | o[1]>>4, byte(0xb8)},
		{"RFC 2473 §3.1: payload length is the inner packet's", binary.BigEndian.Uint16(o[4:]), uint16(len(inner))},
		{"RFC 2473 §3.1: next header 4 (IPv4)", o[6], byte(4)},
		{"RFC 2473 §6.3: the tunnel's own hop limit", o[7], byte(HopLimit)},
		{"RFC 6333 §5: source is the B4", netip.AddrFrom16([16]byte(o[8:24])), testB4},
		{"RFC 6333 §5: destination is the AFTR", netip.AddrFrom16([16]byte(o[24:40])), testAFTR},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if !bytes.Equal(o[40:], inner) {
		t.Errorf("inner packet changed:\n% x\nwant\n% x", o[40:], inner)
	}
	if h.counter("encapsulated") != 1 || h.counter("encapsulated_bytes") != uint64(len(inner)) {
		t.Errorf("counters encapsulated %d bytes %d", h.counter("encapsulated"), h.counter("encapsulated_bytes"))
	}
}

func TestPassThrough(t *testing.T) {
	v6 := ipv6(testB4, netip.MustParseAddr("2001:db8:ffff::6"), 59, nil)
	t.Run("the softwire off: IPv4 passes untouched", func(t *testing.T) {
		h := newHarness(t, Softwire{})
		in := udp4(B44, server4, 10)
		if ret, out := h.out(in); ret != bpftest.ActNext || !bytes.Equal(out[14:], in) {
			t.Errorf("verdict %d, packet changed: %v", ret, !bytes.Equal(out[14:], in))
		}
		enc := ipv6(testAFTR, testB4, 4, in)
		if ret, out := h.in(enc); ret != bpftest.ActNext || !bytes.Equal(out[14:], enc) {
			t.Errorf("ingress: verdict %d, packet changed: %v", ret, !bytes.Equal(out[14:], enc))
		}
	})
	h := newHarness(t, testSoftwire())
	t.Run("IPv6 leaves natively", func(t *testing.T) {
		if ret, out := h.out(v6); ret != bpftest.ActNext || !bytes.Equal(out[14:], v6) {
			t.Errorf("verdict %d", ret)
		}
	})
	t.Run("native IPv6 to the B4 is not the softwire's", func(t *testing.T) {
		p := ipv6(testAFTR, testB4, 17, make([]byte, 8))
		if ret, out := h.in(p); ret != bpftest.ActNext || !bytes.Equal(out[14:], p) {
			t.Errorf("verdict %d", ret)
		}
	})
	t.Run("IPv4 in IPv6 to another address is not the B4's", func(t *testing.T) {
		p := ipv6(testAFTR, netip.MustParseAddr("2001:db8:1000::1"), 4, udp4(server4, B44, 10))
		if ret, out := h.in(p); ret != bpftest.ActNext || !bytes.Equal(out[14:], p) {
			t.Errorf("verdict %d", ret)
		}
	})
}

func TestDecapsulation(t *testing.T) {
	h := newHarness(t, testSoftwire())
	inner := udp4(server4, B44, 200)
	ret, out := h.in(ipv6(testAFTR, testB4, 4, inner))
	if ret != bpftest.ActNext {
		t.Fatalf("verdict %d, want TCX_NEXT (the NAT64 and the stack see the IPv4 packet)", ret)
	}
	if binary.BigEndian.Uint16(out[12:]) != 0x0800 || !bytes.Equal(out[14:], inner) {
		t.Errorf("after decapsulation: EtherType %#x, packet\n% x\nwant\n% x", binary.BigEndian.Uint16(out[12:]), out[14:], inner)
	}
	if h.counter("decapsulated") != 1 || h.counter("decapsulated_bytes") != uint64(len(inner)) {
		t.Errorf("counters decapsulated %d bytes %d", h.counter("decapsulated"), h.counter("decapsulated_bytes"))
	}
}

func TestDrops(t *testing.T) {
	h := newHarness(t, testSoftwire())
	frag := append([]byte{4, 0, 0, 1, 0, 0, 0, 1}, udp4(server4, B44, 10)...)
	badInner := udp4(server4, B44, 10)
	badInner[0] = 0x65
	for _, c := range []struct {
		name, counter string
		out           bool
		l3            []byte
	}{
		{"RFC 6333 §5.3: IPv4 over the softwire's MTU does not leave", "too_big", true, udp4(B44, server4, 1460-28+1)},
		{"RFC 6333 §5: IPv4 in IPv6 from anyone but the AFTR is refused", "not_from_aftr", false,
			ipv6(netip.MustParseAddr("2001:db8:bad::1"), testB4, 4, udp4(server4, B44, 10))},
		{"outer fragments are not reassembled", "outer_fragment", false, ipv6(testAFTR, testB4, 44, frag)},
		{"an inner packet that is not IPv4", "malformed", false, ipv6(testAFTR, testB4, 4, badInner)},
		{"an inner packet longer than the outer payload", "malformed", false, ipv6(testAFTR, testB4, 4, udp4(server4, B44, 10)[:30])},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := h.counter(c.counter)
			var ret uint32
			if c.out {
				ret, _ = h.out(c.l3)
			} else {
				ret, _ = h.in(c.l3)
			}
			if ret != bpftest.ActShot {
				t.Errorf("verdict %d, want TC_ACT_SHOT", ret)
			}
			if got := h.counter(c.counter); got != before+1 {
				t.Errorf("%s = %d, want %d", c.counter, got, before+1)
			}
		})
	}
	t.Run("IPv4 of exactly the softwire's MTU leaves", func(t *testing.T) {
		if ret, _ := h.out(udp4(B44, server4, 1460-28)); ret != bpftest.ActNext {
			t.Errorf("verdict %d", ret)
		}
	})
}

func TestMSSClamp(t *testing.T) {
	sw := testSoftwire()
	h := newHarness(t, sw)
	mss := func(v uint16) []byte { return []byte{2, 4, byte(v >> 8), byte(v)} }
	nopMSS := append([]byte{1}, append(mss(1460), 1, 1, 1)...) // MSS at an odd offset
	for _, c := range []struct {
		name  string
		out   bool
		flags byte
		opts  []byte
		want  uint16
	}{
		{"RFC 9293 §3.7.1: an outgoing SYN's MSS is clamped to the softwire", true, 0x02, mss(1460), uint16(sw.MSS())},
		{"a SYN-ACK from the AFTR is clamped too", false, 0x12, mss(1460), uint16(sw.MSS())},
		{"RFC 1071 §2 (B): an MSS at an odd offset keeps the checksum right", true, 0x02, nopMSS, uint16(sw.MSS())},
		{"a smaller MSS stays", true, 0x02, mss(1200), 1200},
		{"only SYNs carry the option (RFC 9293 §3.2)", true, 0x10, mss(1460), 1460},
		{"options without MSS stay", true, 0x02, []byte{1, 1, 4, 2}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []byte
			if c.out {
				_, o := h.out(tcp4(B44, server4, c.flags, c.opts, nil))
				got = o[14+40:]
			} else {
				_, o := h.in(ipv6(testAFTR, testB4, 4, tcp4(server4, B44, c.flags, c.opts, nil)))
				got = o[14:]
			}
			if m := mssOf(t, got); m != c.want {
				t.Errorf("MSS %d, want %d", m, c.want)
			}
		})
	}
}

func TestCounterNamesMatchTheProgram(t *testing.T) {
	b, err := os.ReadFile("bpf/dslite.h")
	if err != nil {
		t.Skip("no source tree (target kernel VM)")
	}
	var names []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) > 0 && bytes.HasPrefix(f[0], []byte("C_")) && !bytes.HasPrefix(f[0], []byte("C_MAX")) {
			names = append(names, string(bytes.TrimRight(bytes.SplitN(f[0], []byte("="), 2)[0], ",")))
		}
	}
	if len(names) != len(CounterNames) {
		t.Fatalf("bpf/dslite.h has %d counters %v, CounterNames %d", len(names), names, len(CounterNames))
	}
}
