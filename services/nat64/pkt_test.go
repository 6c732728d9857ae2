package nat64

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"codeberg.org/monostack/gizmo/internal/bpftest"
)

// Minimal packet builders and checkers for the tests: enough IPv4, IPv6,
// TCP, UDP and ICMP to drive the translator and verify what comes out.

// seg is the transport header and payload of a test packet.
type seg = bpftest.Segment

func ip6(src, dst netip.Addr, hop uint8, nh uint8, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = nh
	b[7] = hop
	copy(b[8:], src.AsSlice())
	copy(b[24:], dst.AsSlice())
	return append(b, payload...)
}

func ip4(src, dst netip.Addr, ttl uint8, proto uint8, df bool, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(b[4:], 0x1234)
	if df {
		b[6] = 0x40
	}
	b[8] = ttl
	b[9] = proto
	copy(b[12:], src.AsSlice())
	copy(b[16:], dst.AsSlice())
	binary.BigEndian.PutUint16(b[10:], bpftest.Checksum(b, 0))
	return append(b, payload...)
}

func pkt6(src, dst netip.Addr, s seg) []byte {
	return ip6(src, dst, 64, s.IPProto(true), s.Bytes(src, dst))
}

func pkt4(src, dst netip.Addr, s seg) []byte {
	return ip4(src, dst, 64, s.IPProto(false), true, s.Bytes(src, dst))
}

// parsed is what the checks look at in a translated packet.
type parsed struct {
	src, dst     netip.Addr
	proto        uint8
	ttl          uint8
	sport, dport uint16 // ICMP: identifier in both
	icmpType     uint8
	icmpCode     uint8
	info         uint32
	l4           []byte
}

// parse checks the header and transport checksums and returns the fields.
func parse(t *testing.T, b []byte) parsed {
	t.Helper()
	return parseOpt(t, b, true)
}

// parseOpt checks transport checksums only with checkL4: a translator
// keeps a wrong checksum wrong (RFC 7915 §4.5 and §5.5: it adjusts, it
// does not validate), so packets built from random bytes are only checked
// up to the IP header.
func parseOpt(t *testing.T, b []byte, checkL4 bool) parsed {
	t.Helper()
	var p parsed
	if len(b) < 20 {
		t.Fatalf("packet of %d bytes", len(b))
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0xf) * 4
		if bpftest.Checksum(b[:ihl], 0) != 0 {
			t.Errorf("IPv4 header checksum wrong: % x", b[:ihl])
		}
		tot := int(binary.BigEndian.Uint16(b[2:]))
		if tot != len(b) {
			t.Errorf("IPv4 total length %d, packet %d", tot, len(b))
		}
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.proto, p.ttl, p.l4 = b[9], b[8], b[ihl:]
	case 6:
		if int(binary.BigEndian.Uint16(b[4:]))+40 != len(b) {
			t.Errorf("IPv6 payload length %d, packet %d", binary.BigEndian.Uint16(b[4:]), len(b))
		}
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		p.proto, p.ttl, p.l4 = b[6], b[7], b[40:]
	default:
		t.Fatalf("not IP: % x", b[:8])
	}
	if len(p.l4) < 8 {
		if checkL4 {
			t.Errorf("transport header of %d bytes", len(p.l4))
		}
		return p
	}
	switch p.proto {
	case ProtoTCP, ProtoUDP:
		if p.proto == ProtoUDP && p.src.Is4() && binary.BigEndian.Uint16(p.l4[6:]) == 0 {
			break
		}
		if c := bpftest.SegmentChecksum(p.l4, p.src, p.dst, p.proto); c != 0 && checkL4 {
			t.Errorf("%d checksum wrong (residue %#x)", p.proto, c)
		}
		p.sport = binary.BigEndian.Uint16(p.l4[0:])
		p.dport = binary.BigEndian.Uint16(p.l4[2:])
	case 1, 58:
		if c := bpftest.SegmentChecksum(p.l4, p.src, p.dst, p.proto); c != 0 && checkL4 {
			t.Errorf("ICMP checksum wrong (residue %#x)", c)
		}
		p.icmpType, p.icmpCode = p.l4[0], p.l4[1]
		p.info = binary.BigEndian.Uint32(p.l4[4:])
		p.sport = binary.BigEndian.Uint16(p.l4[4:])
		p.dport = p.sport
	}
	return p
}
