package nat64

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// TestRFC7915FragmentsWithoutDF checks the head of a split (bpf/frag.h):
// an IPv4 packet without DF that is too big for the LAN becomes IPv6
// fragments (RFC 7915 §4). The test run has no interfaces, so the tail,
// which the kernel would get back at the WAN's ingress, stays inside; the
// head must be a fitting first fragment whose upper-layer checksum is
// right for the whole datagram.
func TestRFC7915FragmentsWithoutDF(t *testing.T) {
	p := testPlan()
	p.LANMTU = 1280
	h := newHarness(t, p, 0)
	o := h.out(t, p, hostA, remote1, seg{Proto: ProtoUDP, SPort: 6000, DPort: 53})

	payload := make([]byte, 1472)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	udp := seg{Proto: ProtoUDP, SPort: 53, DPort: o.sport, Payload: payload}.Bytes(remote1, pool)
	in := ip4(remote1, pool, 64, ProtoUDP, false, udp)
	ret, out := h.send(false, in)
	if ret != bpftest.ActRedirect {
		t.Fatalf("verdict %d, counters needs_fragmentation %d malformed %d", ret, h.counter("needs_fragmentation"), h.counter("malformed"))
	}
	// RFC 8200 §4.5: fragment data in units of 8 bytes; 1280 − 40 − 8.
	const head = 1232
	if len(out) != 40+8+head || out[6] != 44 {
		t.Fatalf("head: %d bytes, next header %d; want %d bytes with a fragment header", len(out), out[6], 40+8+head)
	}
	fh := out[40:48]
	if fh[0] != ProtoUDP || binary.BigEndian.Uint16(fh[2:])&^7 != 0 || fh[3]&1 != 1 {
		t.Errorf("fragment header % x: want UDP, offset 0, more fragments", fh)
	}
	// RFC 7915 §4.1: the identification comes from the IPv4 header.
	if binary.BigEndian.Uint32(fh[4:]) != uint32(binary.BigEndian.Uint16(in[4:])) {
		t.Errorf("identification % x, IPv4 had % x", fh[4:], in[4:6])
	}
	if src := netip.AddrFrom16([16]byte(out[8:24])); src != to6(p, remote1) {
		t.Errorf("source %v", src)
	}
	// The whole datagram: the translated head and the untouched rest.
	dgram := append(append([]byte{}, out[48:]...), udp[head:]...)
	if port := binary.BigEndian.Uint16(dgram[2:]); port != 6000 {
		t.Errorf("destination port %d, want the host's 6000", port)
	}
	if c := bpftest.Checksum(dgram, bpftest.PseudoSum(to6(p, remote1), hostA, ProtoUDP, len(dgram))); c != 0 {
		t.Errorf("UDP checksum of the reassembled datagram wrong (residue %#x)", c)
	}
	if !bytes.Equal(dgram[8:], payload) {
		t.Error("payload changed")
	}
	if h.counter("fragmented_4to6") != 1 || h.counter("needs_fragmentation") != 0 {
		t.Errorf("fragmented_4to6 %d needs_fragmentation %d", h.counter("fragmented_4to6"), h.counter("needs_fragmentation"))
	}

	// With DF the sender gets Fragmentation Needed instead (RFC 7915 §4).
	ret, out = h.send(false, ip4(remote1, pool, 64, ProtoUDP, true, udp))
	if r := parse(t, out); ret != bpftest.ActRedirect || r.icmpType != 3 || r.icmpCode != 4 {
		t.Errorf("DF: verdict %d, ICMP %d/%d; want fragmentation needed", ret, r.icmpType, r.icmpCode)
	}
	// ICMP is not split: the checksum of a fragmented ICMPv6 message
	// covers all of it (a pseudo-header with the whole length).
	e := h.out(t, p, hostA, remote1, seg{Proto: ProtoICMP, ID: 77, Type: 128})
	ret, _ = h.send(false, ip4(remote1, pool, 64, ProtoICMP, false, seg{Proto: ProtoICMP, ID: e.sport, Type: 0, Payload: payload}.Bytes(remote1, pool)))
	if ret != bpftest.ActShot || h.counter("needs_fragmentation") != 1 {
		t.Errorf("big echo reply without DF: verdict %d, needs_fragmentation %d; want a counted drop", ret, h.counter("needs_fragmentation"))
	}
}

// TestNetnsRFC7915FragmentsWithoutDF sends a 3000-byte UDP datagram
// without DF from the IPv4 side. Its sender fragments it for the 1500-byte
// WAN; each 1500-byte fragment is 20 bytes too big for the LAN as IPv6, so
// the program splits it, hands the tail back to the kernel and translates
// both. The IPv6 host's kernel reassembles the datagram and checks its
// checksum: the socket gets all 3000 bytes.
func TestNetnsRFC7915FragmentsWithoutDF(t *testing.T) {
	tp, s := runTopo(t, 1500, Config{})

	srv := testns.ListenPacket(t, tp.v4, "udp4", "198.51.100.80:7000")
	// RFC 1191 off: the kernel fragments and sends DF=0.
	rc, err := srv.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	cli := testns.ListenPacket(t, tp.h6, "udp6", "[2001:db8:1000::a]:0")

	from := reachServer(t, cli, srv, "hello")
	big := make([]byte, 3000)
	for i := range big {
		big[i] = byte(i * 13)
	}
	if _, err := srv.WriteTo(big, from); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := cli.ReadFrom(buf)
	if err != nil && !isTimeout(err) {
		t.Fatal(err)
	}
	if n != len(big) || !bytes.Equal(buf[:n], big) {
		t.Errorf("host got %d bytes (%v), want the 3000 sent; counters %v", n, err, s.Stats().Counters)
	}
	c := s.Stats().Counters
	if c["fragmented_4to6"] < 2 || c["needs_fragmentation"] != 0 || c["fragment_without_state"] != 0 {
		t.Errorf("counters %v", c)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout() || err == syscall.ETIMEDOUT
}
