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
		{"existing network: the DNS64 sits at :1::53 of the on-link /64, outside its NAT64 /96",
			OnLinkDNS(netip.MustParsePrefix("2001:db8:1000:4500::/64")), netip.MustParseAddr("2001:db8:1000:4500:1::53")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestOnLinkLayout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want netip.Prefix
	}{
		{"RFC 4193 3.1: the on-link ULA /64 is subnet 0x64 of the /48, not the management /64",
			OnLinkULA(netip.MustParsePrefix("fd12:3456:789a::/48")), netip.MustParsePrefix("fd12:3456:789a:64::/64")},
		{"a /56 ULA has room for subnet 0x64",
			OnLinkULA(netip.MustParsePrefix("fd12:3456:789a:ff00::/56")), netip.MustParsePrefix("fd12:3456:789a:ff64::/64")},
		{"a /64 ULA has no second /64",
			OnLinkULA(netip.MustParsePrefix("fd12:3456:789a:1::/64")), netip.Prefix{}},
		{"no ULA, no on-link ULA /64",
			OnLinkULA(netip.Prefix{}), netip.Prefix{}},
		{"RFC 6052 2.2: the NAT64 prefix is the first /96 of the on-link /64",
			NAT64In(netip.MustParsePrefix("2001:db8:1000:4500::/64")), netip.MustParsePrefix("2001:db8:1000:4500::/96")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	p := netip.MustParsePrefix("fd12:3456:789a:64::/64")
	if NAT64In(p).Contains(OnLinkDNS(p)) || !p.Contains(OnLinkDNS(p)) {
		t.Errorf("DNS64 address %v: want it in %v and outside %v", OnLinkDNS(p), p, NAT64In(p))
	}
}

// UsableDelegation is dhcp6pd.DelegationPolicy (its tests check each of
// its rules) for IPv6 prefixes only.
func TestUsableDelegation(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    string
		want bool
	}{
		{"RFC 7084 L-2: a /56 has a /64 for the LAN", "2001:db8:1000:100::/56", true},
		{"RFC 4193: the policy refuses a ULA", "fd00:1234:5678::/48", false},
		{"RFC 4291 2.5.5.2: an IPv4-mapped prefix is no delegation", "::ffff:192.0.2.0/120", false},
		{"an IPv4 prefix is no delegation", "192.0.2.0/32", false},
	} {
		if got := UsableDelegation(netip.MustParsePrefix(tc.p)); got != tc.want {
			t.Errorf("%s: UsableDelegation(%s) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
	if UsableDelegation(netip.Prefix{}) {
		t.Error("the zero prefix is usable")
	}
}
