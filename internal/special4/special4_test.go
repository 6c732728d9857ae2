package special4

import (
	"net/netip"
	"testing"
)

func TestIsNonGlobal(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},         // RFC 1918
		{"172.31.255.255", true},   // RFC 1918, last address
		{"172.32.0.1", false},      // just outside 172.16.0.0/12
		{"192.168.1.1", true},      // RFC 1918
		{"100.64.0.1", true},       // RFC 6598
		{"127.0.0.1", true},        // loopback
		{"169.254.1.1", true},      // link-local
		{"192.0.0.170", true},      // ipv4only.arpa's own block: callers make the RFC 7050 exception
		{"192.88.99.1", true},      // RFC 7526
		{"224.0.0.251", true},      // multicast
		{"255.255.255.255", true},  // limited broadcast
		{"198.51.100.80", true},    // TEST-NET-2 (the lab's "internet" is documentation space)
		{"8.8.8.8", false},         // global
		{"1.1.1.1", false},         // global
		{"::ffff:10.1.2.3", false}, // not IPv4: the IPv4-mapped form is the caller's to unmap
		{"2001:db8::1", false},     // IPv6
	} {
		if got := IsNonGlobal(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("IsNonGlobal(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// A caller appending to the list must not change what the next caller gets.
func TestNonGlobalIsFresh(t *testing.T) {
	a := NonGlobal()
	a[0] = netip.MustParsePrefix("8.8.8.0/24")
	if NonGlobal()[0] == a[0] {
		t.Fatal("NonGlobal returned a shared slice")
	}
}
