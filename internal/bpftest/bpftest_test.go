package bpftest

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// The EtherType follows the packet's IP version (RFC 894 for IPv4, RFC
// 2464 for IPv6), after the destination and the source.
func TestFrame(t *testing.T) {
	dst, src := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	for _, c := range []struct {
		name  string
		l3    []byte
		etype []byte
	}{
		{"RFC 894: IPv4", []byte{0x45, 0, 0, 20}, []byte{0x08, 0x00}},
		{"RFC 2464: IPv6", []byte{0x60, 0, 0, 0}, []byte{0x86, 0xdd}},
	} {
		want := append(append(append(append([]byte{}, dst...), src...), c.etype...), c.l3...)
		if got := Frame(dst, src, c.l3); !bytes.Equal(got, want) {
			t.Errorf("%s: frame % x, want % x", c.name, got, want)
		}
	}
}

// RFC 9293 §3.2: options are a kind byte, then for all but kinds 0 (end)
// and 1 (no-operation) a length byte covering the whole option.
func TestMSS(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []byte
		want uint16
		ok   bool
	}{
		{"MSS first", []byte{2, 4, 0x05, 0xb4}, 1460, true},
		{"after no-operations", []byte{1, 1, 1, 2, 4, 0x05, 0x78, 0, 0, 0, 0, 0}, 1400, true},
		{"after a window scale", []byte{3, 3, 7, 2, 4, 0x05, 0xb4, 0}, 1460, true},
		{"none", []byte{1, 1, 3, 3, 7, 0, 0, 0}, 0, false},
		{"end of options first", []byte{0, 2, 4, 0x05, 0xb4, 0, 0, 0}, 0, false},
		{"a zero length stops the walk", []byte{3, 0, 2, 4, 0x05, 0xb4, 0, 0}, 0, false},
	} {
		tcp := make([]byte, 20, 20+len(c.opts))
		tcp[12] = byte(5+len(c.opts)/4) << 4
		tcp = append(tcp, c.opts...)
		if got, ok := MSS(tcp); got != c.want || ok != c.ok {
			t.Errorf("%s: MSS %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// A segment carries a checksum its receiver accepts: ICMP sent from an
// IPv6 address is ICMPv6, whose checksum covers the pseudo-header (RFC
// 4443 §2.3); a UDP segment over IPv4 may go without one (RFC 768).
func TestSegment(t *testing.T) {
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.80")
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	for _, c := range []struct {
		name     string
		s        Segment
		src, dst netip.Addr
		proto    uint8 // checked against, in the IP header of src's version
		csumAt   int   // where the checksum sits
	}{
		{"RFC 793: TCP over IPv4", Segment{Proto: 6, SPort: 1, DPort: 80, Flags: 2, TCPOpts: []byte{2, 4, 5, 0xb4}}, v4a, v4b, 6, 16},
		{"RFC 8200 §8.1: UDP over IPv6", Segment{Proto: 17, SPort: 53, DPort: 53, Payload: []byte("abc")}, v6a, v6b, 17, 6},
		{"RFC 792: ICMP echo", Segment{Proto: 1, Type: 8, ID: 7}, v4a, v4b, 1, 2},
		{"RFC 4443: ICMP from IPv6 is ICMPv6", Segment{Proto: 1, Type: 128, ID: 7}, v6a, v6b, 58, 2},
	} {
		b := c.s.Bytes(c.src, c.dst)
		if got := c.s.IPProto(c.src.Is6()); got != c.proto {
			t.Errorf("%s: IPProto %d, want %d", c.name, got, c.proto)
		}
		if binary.BigEndian.Uint16(b[c.csumAt:]) == 0 || SegmentChecksum(b, c.src, c.dst, c.proto) != 0 {
			t.Errorf("%s: checksum does not verify: % x", c.name, b)
		}
	}
	udp := Segment{Proto: 17, SPort: 1, DPort: 2, NoChecksum: true}.Bytes(v4a, v4b)
	if binary.BigEndian.Uint16(udp[6:]) != 0 {
		t.Errorf("NoChecksum: UDP checksum %#04x, want 0", binary.BigEndian.Uint16(udp[6:]))
	}
	echo := Segment{Proto: 1, Type: 8, ID: 0x1234}.Bytes(v4a, v4b)
	if got := binary.BigEndian.Uint32(echo[4:]); got != 0x12340001 {
		t.Errorf("echo identifier and sequence %#08x, want 0x12340001", got)
	}
}
