package fastpath

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"github.com/cilium/ebpf"
)

// Fake interface indexes: BPF_PROG_TEST_RUN does not redirect, it only
// reports the verdict, and the learners compare ingress_ifindex.
const (
	lanIdx = 1001
	wanIdx = 1002
)

var (
	lanPrefix = netip.MustParsePrefix("2001:db8:1000:100::/64")
	ulaPrefix = netip.MustParsePrefix("fd12:3456:789a::/64")
	hostA     = netip.MustParseAddr("2001:db8:1000:100::5")
	hostB     = netip.MustParseAddr("2001:db8:1000:100::6")
	remote    = netip.MustParseAddr("2001:db8:ffff::10")
)

// harness runs the programs on packets built by the tests, with a clock
// the test moves and without bpf_fib_lookup.
type harness struct {
	t        testing.TB
	dp       *datapath
	now      uint64
	prefixes []netip.Prefix
	exclude  []netip.Prefix
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	dp := bpftest.Load(t, func() (*datapath, error) { return loadDatapath(0) }, func(dp *datapath) { dp.close() })
	h := &harness{t: t, dp: dp, now: uint64(1000 * time.Second), prefixes: []netip.Prefix{lanPrefix, ulaPrefix}}
	h.configure()
	return h
}

func (h *harness) tmo() timeouts {
	return timeouts{udp: UDPTimeout, tcp: TCPTimeout, icmp: ICMPTimeout, closing: ClosingTimeout, refresh: RefreshAfter}
}

func (h *harness) configure() {
	h.t.Helper()
	if err := h.dp.configure(true, lanIdx, wanIdx, DefaultMark, h.prefixes, h.exclude, h.tmo(), flagNoFIB, h.now); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.now += uint64(d)
	h.configure()
}

// skbCtx is the start of struct __sk_buff, up to the fields a test run
// may set (mark, ingress_ifindex).
type skbCtx struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTCI, VlanProto, Priority, IngressIfindex, Ifindex uint32
}

// skbCtxOut has room for the whole struct __sk_buff the kernel writes back.
type skbCtxOut struct {
	skbCtx
	_ [64]uint32
}

// result is what a program did with a packet.
type result struct {
	verdict uint32
	l3      []byte // the packet after the program
	mark    uint32
}

func (h *harness) run(prog *ebpf.Program, l3 []byte, ingressIfindex int, mark uint32) result {
	h.t.Helper()
	etype := []byte{0x86, 0xdd}
	if len(l3) > 0 && l3[0]>>4 == 4 {
		etype = []byte{0x08, 0x00}
	}
	frame := append([]byte{2, 0, 0, 0, 0, 0xa, 2, 0, 0, 0, 0, 0xb}, etype...)
	frame = append(frame, l3...)
	in := skbCtx{Mark: mark, IngressIfindex: uint32(ingressIfindex)}
	var out skbCtxOut
	ro := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256), Context: in, ContextOut: &out}
	ret, err := prog.Run(ro)
	if err != nil {
		h.t.Fatalf("test run: %v", err)
	}
	r := result{verdict: ret, mark: out.Mark}
	if len(ro.DataOut) >= 14 {
		r.l3 = ro.DataOut[14:]
	}
	return r
}

// The four hooks, as the kernel would call them for a forwarded packet.
func (h *harness) lanIngress(l3 []byte) result { return h.run(h.dp.objs.FpLan, l3, 0, 0) }
func (h *harness) wanIngress(l3 []byte) result { return h.run(h.dp.objs.FpWan, l3, 0, 0) }

// acceptOut is the firewall forwarding a LAN→WAN packet: it leaves
// uplink0, having come in on lan0.
func (h *harness) acceptOut(l3 []byte) result { return h.run(h.dp.objs.FpLearnWan, l3, lanIdx, 0) }

// acceptIn is the firewall forwarding a WAN→LAN packet out of lan0.
func (h *harness) acceptIn(l3 []byte) result { return h.run(h.dp.objs.FpLearnLan, l3, wanIdx, 0) }

func (h *harness) counters() [nCounters]uint64 {
	h.t.Helper()
	c, err := h.dp.counters()
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// seg describes the transport part of a test packet.
type seg struct {
	proto        uint8
	sport, dport uint16 // ICMPv6 echo: sport is the identifier
	flags        uint8  // TCP
	icmpType     uint8
	payload      int
}

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// pkt6 builds an IPv6 packet with hop limit 64 and no extension headers.
func pkt6(src, dst netip.Addr, s seg) []byte {
	var l4 []byte
	switch s.proto {
	case 6:
		l4 = make([]byte, 20+s.payload)
		binary.BigEndian.PutUint16(l4[0:], s.sport)
		binary.BigEndian.PutUint16(l4[2:], s.dport)
		l4[12] = 5 << 4
		l4[13] = s.flags
	case 17:
		l4 = make([]byte, 8+s.payload)
		binary.BigEndian.PutUint16(l4[0:], s.sport)
		binary.BigEndian.PutUint16(l4[2:], s.dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	case 58:
		l4 = make([]byte, 8+s.payload)
		l4[0] = s.icmpType
		binary.BigEndian.PutUint16(l4[4:], s.sport)
	default:
		l4 = make([]byte, 8+s.payload)
	}
	b := make([]byte, 40, 40+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6] = s.proto
	b[7] = 64
	sa, da := src.As16(), dst.As16()
	copy(b[8:], sa[:])
	copy(b[24:], da[:])
	return append(b, l4...)
}
