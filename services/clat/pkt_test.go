package clat

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// Packet builders and checkers for the tests: enough IPv4, IPv6, TCP, UDP
// and ICMP to drive the translator and verify what comes out, with the
// checksums computed here (RFC 1071), not by the program under test.

const (
	pTCP   = 6
	pUDP   = 17
	pICMP  = 1
	pICMP6 = 58
	pFrag  = 44
)

// seg is the upper-layer header and payload of a test packet.
type seg = bpftest.Segment

// pkt4 is an IPv4 packet with TTL 63 and DF unset.
func pkt4(src, dst netip.Addr, s seg) []byte {
	return ip4(src, dst, s.IPProto(false), 63, 0, 0, nil, s.Bytes(src, dst))
}

// ip4 builds an IPv4 header (with options opts, a multiple of four
// bytes) in front of l4.
func ip4(src, dst netip.Addr, proto, ttl uint8, id, fragOff uint16, opts, l4 []byte) []byte {
	hlen := 20 + len(opts)
	b := make([]byte, hlen, hlen+len(l4))
	b[0] = 0x40 | byte(hlen/4)
	b[1] = 0x28 // DSCP/ECN, carried to the traffic class
	binary.BigEndian.PutUint16(b[2:], uint16(hlen+len(l4)))
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], fragOff)
	b[8], b[9] = ttl, proto
	copy(b[12:], src.AsSlice())
	copy(b[16:], dst.AsSlice())
	copy(b[20:], opts)
	binary.BigEndian.PutUint16(b[10:], bpftest.Checksum(b[:hlen], 0))
	return append(b, l4...)
}

// pkt6 is an IPv6 packet with hop limit 63.
func pkt6(src, dst netip.Addr, s seg) []byte {
	return ip6(src, dst, s.IPProto(true), 63, s.Bytes(src, dst))
}

func ip6(src, dst netip.Addr, nh, hl uint8, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0], b[1] = 0x62, 0x80 // traffic class 0x28
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6], b[7] = nh, hl
	copy(b[8:], src.AsSlice())
	copy(b[24:], dst.AsSlice())
	return append(b, payload...)
}

// parsed is a translated packet as the checks see it.
type parsed struct {
	v6       bool
	src, dst netip.Addr
	proto    uint8 // upper-layer protocol (after a fragment header)
	ttl      uint8 // TTL or hop limit
	tos      uint8 // TOS or traffic class
	df       bool
	frag     bool // a fragment: IPv4 MF/offset, or an IPv6 fragment header
	fragOff  int
	more     bool
	id       uint32
	l4       []byte
}

// parse checks the IP header (length, IPv4 checksum) and, for a first or
// only fragment, the upper-layer checksum.
func parse(t testing.TB, b []byte) parsed {
	t.Helper()
	p, err := parseErr(b)
	if err != nil {
		t.Fatalf("%v\n% x", err, b)
	}
	return p
}

func parseErr(b []byte) (parsed, error) {
	p, err := parseHeader(b)
	if err != nil {
		return p, err
	}
	return p, checkL4(p)
}

// parseHeader checks the IP header (lengths, the IPv4 checksum) only.
func parseHeader(b []byte) (parsed, error) {
	var p parsed
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		hlen := int(b[0]&0xf) * 4
		if hlen < 20 || len(b) < hlen || int(binary.BigEndian.Uint16(b[2:])) != len(b) {
			return p, fmt.Errorf("IPv4 length: header %d, total %d, have %d", hlen, binary.BigEndian.Uint16(b[2:]), len(b))
		}
		if bpftest.Checksum(b[:hlen], 0) != 0 {
			return p, fmt.Errorf("IPv4 header checksum")
		}
		fo := binary.BigEndian.Uint16(b[6:])
		p.tos, p.ttl, p.proto = b[1], b[8], b[9]
		p.df, p.more, p.fragOff = fo&0x4000 != 0, fo&0x2000 != 0, int(fo&0x1fff)*8
		p.frag = p.more || p.fragOff != 0
		p.id = uint32(binary.BigEndian.Uint16(b[4:]))
		p.src, p.dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		p.l4 = b[hlen:]
	case len(b) >= 40 && b[0]>>4 == 6:
		p.v6 = true
		if int(binary.BigEndian.Uint16(b[4:]))+40 != len(b) {
			return p, fmt.Errorf("IPv6 payload length %d, have %d", binary.BigEndian.Uint16(b[4:]), len(b)-40)
		}
		p.tos = b[0]<<4 | b[1]>>4
		p.proto, p.ttl = b[6], b[7]
		p.src, p.dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		p.l4 = b[40:]
		if p.proto == pFrag {
			if len(p.l4) < 8 {
				return p, fmt.Errorf("short fragment header")
			}
			f := binary.BigEndian.Uint16(p.l4[2:])
			p.frag, p.fragOff, p.more = true, int(f&0xfff8), f&1 != 0
			p.id = binary.BigEndian.Uint32(p.l4[4:])
			p.proto, p.l4 = p.l4[0], p.l4[8:]
		}
	default:
		return p, fmt.Errorf("not an IP packet")
	}
	return p, nil
}

// checkL4 checks the upper-layer checksum of an unfragmented packet.
func checkL4(p parsed) error {
	if p.fragOff != 0 || p.more {
		return nil // the upper-layer checksum covers all fragments
	}
	switch p.proto {
	case pTCP, pUDP, pICMP, pICMP6:
	default:
		return nil
	}
	if p.proto == pUDP && len(p.l4) >= 8 && binary.BigEndian.Uint16(p.l4[6:]) == 0 {
		if p.v6 {
			return fmt.Errorf("UDP over IPv6 without checksum")
		}
		return nil
	}
	if bpftest.SegmentChecksum(p.l4, p.src, p.dst, p.proto) != 0 {
		return fmt.Errorf("%d checksum wrong", p.proto)
	}
	return nil
}

// mss is a TCP MSS option of value v.
func mss(v uint16) []byte { return []byte{2, 4, byte(v >> 8), byte(v)} }
