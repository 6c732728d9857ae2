package bpftest

import (
	"encoding/binary"
	"net/netip"

	"codeberg.org/monostack/gizmo/internal/ethframe"
)

// Checksum is the Internet checksum (RFC 1071) of b, with seed (a
// pseudo-header sum, or 0) added in: folded to 16 bits and inverted, so
// that it is 0 over data that carries a correct checksum.
func Checksum(b []byte, seed uint32) uint16 {
	for seed > 0xffff {
		seed = seed&0xffff + seed>>16
	}
	return ^ethframe.OnesSum(uint16(seed), b)
}

// PseudoSum is the sum of the pseudo-header of RFC 768/793 (IPv4) or
// RFC 8200 §8.1 (IPv6) for an upper-layer packet of length bytes.
func PseudoSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	addrs := ethframe.OnesSum(ethframe.OnesSum(0, src.AsSlice()), dst.AsSlice())
	return uint32(addrs) + uint32(proto) + uint32(length)
}

// TCPHeader is a TCP header with options opts (a multiple of four bytes),
// window 65535 and checksum 0, for the test to fill in.
func TCPHeader(sport, dport uint16, flags uint8, opts []byte) []byte {
	b := make([]byte, 20, 20+len(opts))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = byte(5+len(opts)/4) << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 65535)
	return append(b, opts...)
}

// UDPHeader is a UDP header for a payload of n bytes, with checksum 0.
func UDPHeader(sport, dport uint16, n int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+n))
	return b
}

// ICMPHeader is an ICMP or ICMPv6 header of type typ and code with rest
// as the four bytes after the checksum (echo: identifier and sequence
// number; errors: unused or MTU), checksum 0.
func ICMPHeader(typ, code uint8, rest uint32) []byte {
	b := []byte{typ, code, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[4:], rest)
	return b
}

// SegmentChecksum is the checksum of the transport segment b (header and
// payload) sent from src to dst with protocol proto: with the
// pseudo-header for TCP, UDP and ICMPv6 (RFC 793 §3.1, RFC 768, RFC 4443
// §2.3), without for ICMP (RFC 792). It is 0 over a segment that carries a
// correct checksum.
func SegmentChecksum(b []byte, src, dst netip.Addr, proto uint8) uint16 {
	var seed uint32
	if proto != protoICMP {
		seed = PseudoSum(src, dst, proto, len(b))
	}
	return Checksum(b, seed)
}

// SetChecksum fills in the checksum of the TCP, UDP, ICMP or ICMPv6
// segment b (its checksum field 0) sent from src to dst. A UDP checksum
// that comes to 0 is sent as all ones, since 0 means none (RFC 768).
func SetChecksum(b []byte, src, dst netip.Addr, proto uint8) {
	off := 2 // ICMP and ICMPv6
	switch proto {
	case protoTCP:
		off = 16
	case protoUDP:
		off = 6
	}
	c := SegmentChecksum(b, src, dst, proto)
	if c == 0 && proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[off:], c)
}

const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// Segment is the transport part of a test packet: a TCP, UDP or ICMP
// header and its payload. A translator's tests build one message and send
// it from either side, so an ICMP segment sent from an IPv6 address is
// ICMPv6 (RFC 4443), with the pseudo-header in its checksum.
type Segment struct {
	Proto        uint8  // 6 (TCP), 17 (UDP) or 1 (ICMP)
	SPort, DPort uint16 // TCP, UDP
	Flags        uint8  // TCP
	TCPOpts      []byte // TCP options, a multiple of four bytes
	Type, Code   uint8  // ICMP, ICMPv6
	ID           uint16 // ICMP echo: the identifier (sequence number 1)
	// Rest is the four bytes after an ICMP checksum (errors: unused or
	// the MTU); 0 gives the echo's identifier and sequence number.
	Rest       uint32
	Payload    []byte
	NoChecksum bool // UDP over IPv4 without a checksum (RFC 768)
}

// IPProto is the protocol number of the segment in an IPv4 header, or in
// an IPv6 one when v6 is set.
func (s Segment) IPProto(v6 bool) uint8 {
	if v6 && s.Proto == protoICMP {
		return protoICMPv6
	}
	return s.Proto
}

// Bytes is the segment sent from src to dst, with its checksum.
func (s Segment) Bytes(src, dst netip.Addr) []byte {
	var b []byte
	switch s.Proto {
	case protoTCP:
		b = TCPHeader(s.SPort, s.DPort, s.Flags, s.TCPOpts)
	case protoUDP:
		b = UDPHeader(s.SPort, s.DPort, len(s.Payload))
	default:
		rest := s.Rest
		if rest == 0 {
			rest = uint32(s.ID)<<16 | 1
		}
		b = ICMPHeader(s.Type, s.Code, rest)
	}
	b = append(b, s.Payload...)
	if !s.NoChecksum {
		SetChecksum(b, src, dst, s.IPProto(src.Is6()))
	}
	return b
}
