package roles

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/ethframe"
)

// The probe frames of the VLAN probe (vlanprobe.go). Without the kernel's
// 8021q module there is no VLAN device to open a socket on, so the probe
// writes whole tagged Ethernet frames itself: the same Router Solicitation
// and DHCPv4 DISCOVER that Probe sends untagged.

const etherType8021Q = 0x8100

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
	return taggedFrame(allRoutersMAC, src, vid, etherTypeIPv6, ethframe.IPv6(netip.IPv6Unspecified(), allRouters, 255, protoICMPv6, body)), nil
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
	from := netip.AddrPortFrom(netip.IPv4Unspecified(), 68)
	to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 67)
	return taggedFrame(broadcastMAC, src, vid, etherTypeIPv4, ethframe.IPv4UDP(from, to, m.ToBytes())), nil
}
