// Package ethframe builds Ethernet frames byte by byte: IPv4/UDP, IPv6 and
// ARP in Ethernet II, with their checksums. The services' namespace tests
// and the lab's attackers use it to send what a socket of the kernel's
// would not: a frame whose Ethernet source, link-layer option or hardware
// address field says something else than the sender is. Services that
// write or check whole packets themselves (a VLAN probe without a VLAN
// device, the NS responder, the neighbour watch) use its packets and
// checksums too.
package ethframe

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// EtherTypes (IEEE 802 numbers).
const (
	TypeIPv4 = 0x0800
	TypeARP  = 0x0806
	TypeIPv6 = 0x86dd
)

// Broadcast is the Ethernet broadcast address.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Ethernet is an Ethernet II frame: dst, src, the EtherType and payload.
func Ethernet(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	b := make([]byte, 14, 14+len(payload))
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], etherType)
	return append(b, payload...)
}

// IPv4UDP is an IPv4 packet (no options, TTL 64, DF clear) carrying a UDP
// datagram from src to dst, both checksums filled in (RFC 791, RFC 768).
func IPv4UDP(src, dst netip.AddrPort, payload []byte) []byte {
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	udp = append(udp, payload...)
	s, d := src.Addr().As4(), dst.Addr().As4()
	pseudo := make([]byte, 0, 12+len(udp))
	pseudo = append(pseudo, s[:]...)
	pseudo = append(pseudo, d[:]...)
	pseudo = append(pseudo, 0, 17, udp[4], udp[5])
	c := Checksum(append(pseudo, udp...))
	if c == 0 {
		c = 0xffff // RFC 768: 0 means "no checksum"
	}
	binary.BigEndian.PutUint16(udp[6:], c)

	ip := make([]byte, 20, 20+len(udp))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip))
	return append(ip, udp...)
}

// IPv6 is an IPv6 packet from src to dst with the given hop limit, next
// header and payload (the payload's own checksum is the caller's: for
// ICMPv6, ndp.MarshalMessageChecksum).
func IPv6(src, dst netip.Addr, hopLimit, nextHeader uint8, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = nextHeader
	b[7] = hopLimit
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return append(b, payload...)
}

// ARP operations (RFC 826).
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is an Ethernet/IPv4 ARP packet (RFC 826).
func ARP(op uint16, senderMAC net.HardwareAddr, senderIP netip.Addr, targetMAC net.HardwareAddr, targetIP netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1) // Ethernet
	binary.BigEndian.PutUint16(b[2:], TypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:14], senderMAC)
	s, t := senderIP.As4(), targetIP.As4()
	copy(b[14:18], s[:])
	copy(b[18:24], targetMAC)
	copy(b[24:28], t[:])
	return b
}

// OnesSum adds b to sum in ones' complement (RFC 1071 §4.1), an odd last
// byte padded with a zero. Sums chain over pieces of even length:
// OnesSum(OnesSum(0, a), b) is the sum of a and b back to back, so a
// pseudo-header need not be copied in front of its message.
func OnesSum(sum uint16, b []byte) uint16 {
	s := uint32(sum)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// Checksum is the Internet checksum of b (RFC 1071).
func Checksum(b []byte) uint16 { return ^OnesSum(0, b) }

// protoICMPv6 is ICMPv6's IPv6 next header number.
const protoICMPv6 = 58

// ICMPv6Checksum is the checksum of the ICMPv6 message msg from src to dst
// (RFC 4443 §2.3), over the pseudo-header of RFC 8200 §8.1. Over a message
// that carries its checksum it is 0 when that checksum is right; over one
// with the field zeroed it is the value to put there.
func ICMPv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var pseudo [40]byte
	s, d := src.As16(), dst.As16()
	copy(pseudo[0:16], s[:])
	copy(pseudo[16:32], d[:])
	binary.BigEndian.PutUint32(pseudo[32:36], uint32(len(msg)))
	pseudo[39] = protoICMPv6
	return ^OnesSum(OnesSum(0, pseudo[:]), msg)
}

// SolicitedNode is a's solicited-node multicast address (RFC 4291 §2.7.1).
func SolicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// MulticastMAC is the Ethernet address an IPv6 multicast address maps to
// (RFC 2464 §7).
func MulticastMAC(a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
}
