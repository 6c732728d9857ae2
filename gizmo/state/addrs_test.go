package state

import (
	"net/netip"
	"testing"
)

func TestAddressLayout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want netip.Addr
	}{
		{"RFC 7084 L-2: the LAN uses the first /64 of the delegation; the router is ::1 in it",
			WithIID(LANPrefix(netip.MustParsePrefix("2001:db8:1000:4500::/56")), RouterIID), netip.MustParseAddr("2001:db8:1000:4500::1")},
		{"the management address is ::1 in the ULA's first /64",
			RouterULA(netip.MustParsePrefix("fd12:3456:789a::/48")), netip.MustParseAddr("fd12:3456:789a::1")},
		{"an interface identifier fills the low 64 bits",
			WithIID(netip.MustParsePrefix("2001:db8::/64"), 0x0102030405060708), netip.MustParseAddr("2001:db8::102:304:506:708")},
		{"RDNSS listens on ::53 of the ULA /64",
			DNSAddrsIn(netip.MustParsePrefix("fd12:3456:789a::/48"), netip.Prefix{}).RDNSS, netip.MustParseAddr("fd12:3456:789a::53")},
		{"DHCPv6 sends ::35 of the ULA /64",
			DNSAddrsIn(netip.MustParsePrefix("fd12:3456:789a::/48"), netip.Prefix{}).DHCPv6, netip.MustParseAddr("fd12:3456:789a::35")},
		{"DHCPv4 sends the legacy address",
			DNSAddrsIn(netip.MustParsePrefix("fd12:3456:789a::/48"), netip.MustParsePrefix("192.168.64.1/24")).DHCPv4, netip.MustParseAddr("192.168.64.1")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
