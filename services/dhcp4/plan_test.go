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

// RFC 919 §7: a subnet's broadcast address has every host bit set, across
// octet boundaries too; the subnet is masked first.
func TestBroadcast(t *testing.T) {
	for subnet, want := range map[string]string{
		"203.0.113.129/25": "203.0.113.255",
		"192.0.2.0/24":     "192.0.2.255",
		"10.1.0.0/16":      "10.1.255.255",
		"198.51.100.9/29":  "198.51.100.15",
	} {
		if got := Broadcast(netip.MustParsePrefix(subnet)).String(); got != want {
			t.Errorf("Broadcast(%s) = %s, want %s", subnet, got, want)
		}
	}
}
