package dhcp4

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// inbound is one DHCP message as the server received it.
type inbound struct {
	payload []byte
	// l2: read from the LAN's frames, so that src (the Ethernet source),
	// port (the ifindex it arrived on: a bridge port, or the LAN
	// interface) and dst (the IP destination) are known. A message from a
	// plain UDP socket (Config.Conn) has none of them.
	l2   bool
	src  net.HardwareAddr
	port int
	dst  netip.Addr
}

const (
	ethHeaderLen  = 14
	ipv4MinHeader = 20
	udpHeaderLen  = 8
	etherTypeIPv4 = 0x0800
	protoUDP      = 17
)

var (
	errNotIPv4UDP    = errors.New("not an IPv4/UDP frame to port 67")
	errBadIPv4       = errors.New("malformed IPv4 header or checksum")
	errFragment      = errors.New("an IPv4 fragment")
	errBadUDP        = errors.New("malformed UDP header or checksum")
	errBadEtherFrame = errors.New("truncated Ethernet frame")
)

// parseFrame reads an Ethernet II frame carrying an IPv4 UDP datagram to
// the DHCP server port and returns the message with its Ethernet source
// and IP destination. The kernel checks the IP and UDP headers only for
// its own sockets, after a packet socket has had the frame, so they are
// checked here as it would: RFC 791 header checksum, no fragments (a DHCP
// message fits in one datagram, RFC 2131 §2), RFC 768 length and checksum
// (unless csumPending: the sender was on this host and left the checksum
// to hardware, which the kernel reports in the packet's auxdata).
func parseFrame(b []byte, csumPending bool) (inbound, error) {
	if len(b) < ethHeaderLen+ipv4MinHeader+udpHeaderLen {
		return inbound{}, errBadEtherFrame
	}
	if binary.BigEndian.Uint16(b[12:14]) != etherTypeIPv4 {
		return inbound{}, errNotIPv4UDP
	}
	ip := b[ethHeaderLen:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ip[0]>>4 != 4 || ihl < ipv4MinHeader || total < ihl+udpHeaderLen || total > len(ip) || fold(sum16(0, ip[:ihl])) != 0 {
		return inbound{}, errBadIPv4
	}
	if ip[9] != protoUDP {
		return inbound{}, errNotIPv4UDP
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return inbound{}, errFragment // MF set or a non-zero offset
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	udp := ip[ihl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < udpHeaderLen || ulen > len(udp) {
		return inbound{}, errBadUDP
	}
	udp = udp[:ulen]
	if binary.BigEndian.Uint16(udp[2:4]) != dhcpv4.ServerPort {
		return inbound{}, errNotIPv4UDP
	}
	if binary.BigEndian.Uint16(udp[6:8]) != 0 && !csumPending {
		s, d := src.As4(), dst.As4()
		pseudo := []byte{s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], 0, protoUDP, udp[4], udp[5]}
		if fold(sum16(sum16(0, pseudo), udp)) != 0 {
			return inbound{}, errBadUDP
		}
	}
	return inbound{payload: udp[udpHeaderLen:], l2: true, src: net.HardwareAddr(b[6:12]), dst: dst}, nil
}

// sum16 adds b to the running one's-complement sum acc (RFC 1071).
func sum16(acc uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	return acc
}

// fold is the Internet checksum of a running sum: 0 when the data summed
// carried its own correct checksum.
func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}
