package roles

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// The probe frames of the VLAN probe (vlanprobe.go). Without the kernel's
// 8021q module there is no VLAN device to open a socket on, so the probe
// writes whole tagged Ethernet frames itself: the same Router Solicitation
// and DHCPv4 DISCOVER that Probe sends untagged.

const (
	etherType8021Q = 0x8100
	ipv4HeaderLen  = 20
	udpHeaderLen   = 8
)

var (
	allRoutersMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 2} // RFC 2464 §7: ff02::2
	broadcastMAC  = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allRouters    = netip.MustParseAddr("ff02::2")
)

// taggedFrame is an Ethernet frame from src to dst on VLAN vid (IEEE
// 802.1Q §9.6: TPID 0x8100, then the TCI with priority 0 and the VID)
// carrying payload of etherType.
func taggedFrame(dst, src net.HardwareAddr, vid uint16, etherType uint16, payload []byte) []byte {
	b := make([]byte, 0, 18+len(payload))
	b = append(b, dst...)
	b = append(b, src...)
	b = binary.BigEndian.AppendUint16(b, etherType8021Q)
	b = binary.BigEndian.AppendUint16(b, vid&0x0fff)
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// solicitationFrame is a Router Solicitation from the unspecified address
// to all-routers on VLAN vid. RFC 4861 §4.1: from :: it carries no source
// link-layer address option; §6.1.1: hop limit 255.
func solicitationFrame(src net.HardwareAddr, vid uint16) ([]byte, error) {
	rs := icmp.Message{Type: ipv6.ICMPTypeRouterSolicitation, Body: &icmp.RawBody{Data: make([]byte, 4)}}
	body, err := rs.Marshal(icmp.IPv6PseudoHeader(net.IPv6unspecified, allRouters.AsSlice()))
	if err != nil {
		return nil, fmt.Errorf("roles: router solicitation: %w", err)
	}
	ip := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(body))
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(body)))
	ip[6], ip[7] = protoICMPv6, 255
	// Source :: (bytes 8..23 stay zero), destination ff02::2.
	dst := allRouters.As16()
	copy(ip[24:40], dst[:])
	return taggedFrame(allRoutersMAC, src, vid, etherTypeIPv6, append(ip, body...)), nil
}

// discoverFrame is a DHCPv4 DISCOVER from src with transaction ID xid,
// broadcast on VLAN vid from 0.0.0.0:68 to 255.255.255.255:67 (RFC 2131
// §4.1), with the broadcast flag set: the probe has no address to take a
// unicast OFFER at.
func discoverFrame(src net.HardwareAddr, vid uint16, xid dhcpv4.TransactionID) ([]byte, error) {
	m, err := dhcpv4.NewDiscovery(src, dhcpv4.WithTransactionID(xid), dhcpv4.WithBroadcast(true))
	if err != nil {
		return nil, fmt.Errorf("roles: DHCPv4 DISCOVER: %w", err)
	}
	msg := m.ToBytes()
	from, to := netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
	udp := make([]byte, udpHeaderLen, udpHeaderLen+len(msg))
	binary.BigEndian.PutUint16(udp[0:2], 68)
	binary.BigEndian.PutUint16(udp[2:4], 67)
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpHeaderLen+len(msg)))
	udp = append(udp, msg...)
	binary.BigEndian.PutUint16(udp[6:8], udpChecksum(from, to, udp))
	ip := make([]byte, ipv4HeaderLen, ipv4HeaderLen+len(udp))
	ip[0] = 4<<4 | ipv4HeaderLen/4
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4HeaderLen+len(udp)))
	ip[8], ip[9] = 64, protoUDP // TTL, protocol
	f, t := from.As4(), to.As4()
	copy(ip[12:16], f[:])
	copy(ip[16:20], t[:])
	binary.BigEndian.PutUint16(ip[10:12], ^onesSum(0, ip))
	return taggedFrame(broadcastMAC, src, vid, etherTypeIPv4, append(ip, udp...)), nil
}

// udpChecksum is the UDP checksum over the IPv4 pseudo-header (RFC 768);
// a computed 0 is sent as all ones.
func udpChecksum(src, dst netip.Addr, udp []byte) uint16 {
	s, d := src.As4(), dst.As4()
	var pseudo []byte
	pseudo = append(pseudo, s[:]...)
	pseudo = append(pseudo, d[:]...)
	pseudo = append(pseudo, 0, protoUDP)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
	sum := ^onesSum(onesSum(0, pseudo), udp)
	if sum == 0 {
		return 0xffff
	}
	return sum
}

// onesSum adds b to sum in ones' complement (RFC 1071).
func onesSum(sum uint16, b []byte) uint16 {
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
