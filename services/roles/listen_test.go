package roles

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/filtertest"
)

// The kernel filter must pass every frame ParseFrame finds a signal in, and
// drop the LAN's ordinary traffic.
func TestUpstreamFilter(t *testing.T) {
	fragment := dhcp4Frame(t, dhcpv4.MessageTypeOffer, dhcpv4.OpcodeBootReply)
	fragment[14+6] |= 0x20 // more fragments
	echo := ether(testMAC, etherTypeIPv6, ethframe.IPv6(routerLL, allNodes, 64, protoICMPv6, []byte{128, 0, 0, 0, 0, 0, 0, 0}))
	tcp := ether(testMAC, etherTypeIPv4, ethframe.IPv4UDP(netip.AddrPortFrom(isp4, 67), netip.MustParseAddrPort("192.0.2.2:68"), nil))
	tcp[14+9] = 6
	for _, tc := range []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"an RA passes", raFrame(t, time.Hour, 255), true},
		{"an RA without default route passes (ParseFrame tells it apart)", raFrame(t, 0, 255), true},
		{"a DHCPv4 OFFER passes", dhcp4Frame(t, dhcpv4.MessageTypeOffer, dhcpv4.OpcodeBootReply), true},
		{"a DHCPv6 Reply passes", dhcp6Frame(t, dhcpv6.MessageTypeReply, 547, 546), true},
		{"a DHCPv6 Solicit (from port 546) is dropped", dhcp6Frame(t, dhcpv6.MessageTypeSolicit, 546, 547), false},
		{"an ICMPv6 echo request is dropped", echo, false},
		{"TCP is dropped", tcp, false},
		{"an IPv4 fragment is dropped", fragment, false},
		{"ARP is dropped", ether(testMAC, ethframe.TypeARP, make([]byte, 28)), false},
	} {
		t.Run(tc.name, func(t *testing.T) { filtertest.Check(t, upstreamFilter, tc.frame, tc.pass) })
	}
}
