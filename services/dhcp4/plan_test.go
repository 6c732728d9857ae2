package dhcp4

import (
	"net/netip"
	"testing"
)

// MaxPool bounds a pool that would be longer, and leaves a shorter one.
func TestCapPool(t *testing.T) {
	first := netip.MustParseAddr("10.0.0.1")
	if got, want := CapPool(first, netip.MustParseAddr("10.255.255.254")), netip.MustParseAddr("10.1.0.0"); got != want {
		t.Errorf("a /8's pool ends at %s, want %s (MaxPool addresses)", got, want)
	}
	if last := netip.MustParseAddr("10.0.255.254"); CapPool(first, last) != last {
		t.Errorf("a /16's pool was cut to %s", CapPool(first, last))
	}
}

// RFC 919 §7: a subnet's broadcast address has every host bit set.
func TestBroadcast(t *testing.T) {
	for _, tc := range []struct{ rule, subnet, want string }{
		{"a /24's host bits are its last octet", "192.0.2.0/24", "192.0.2.255"},
		{"a /16's host bits span two octets", "10.1.0.0/16", "10.1.255.255"},
		{"a /25's host bits start inside an octet, and the subnet is masked first", "203.0.113.129/25", "203.0.113.255"},
		{"a /29 has three host bits", "198.51.100.9/29", "198.51.100.15"},
	} {
		if got := Broadcast(netip.MustParsePrefix(tc.subnet)).String(); got != tc.want {
			t.Errorf("%s: Broadcast(%s) = %s, want %s", tc.rule, tc.subnet, got, tc.want)
		}
	}
}
