// Package special4 knows which IPv4 ranges are not globally reachable, the
// one list that both the DNS64 (what it may synthesize) and the NAT64 (where
// it may translate to) need for RFC 6052 §3.1.
package special4

import "net/netip"

// NonGlobal returns the IPv4 ranges that are not globally reachable: the
// IANA IPv4 special-purpose registry's entries with Globally Reachable =
// False (RFC 6890, RFC 5735 §3, RFC 6598), the deprecated 6to4 relay anycast
// block (RFC 7526), multicast (RFC 5771) and the reserved 240.0.0.0/4,
// which includes the limited broadcast address. RFC 6052 §3.1: the
// well-known prefix 64:ff9b::/96 must not be used to represent them.
//
// It returns a fresh slice each time, so callers may append to it.
func NonGlobal() []netip.Prefix {
	ranges := nonGlobal // an array: this copies it
	return ranges[:]
}

// nonGlobal is an array, not a slice, so that no caller can change it.
var nonGlobal = [...]netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", RFC 791
	netip.MustParsePrefix("10.0.0.0/8"),      // private, RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, RFC 6598
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback, RFC 1122
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, RFC 3927
	netip.MustParsePrefix("172.16.0.0/12"),   // private, RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments, RFC 6890
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1, RFC 5737
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast, deprecated by RFC 7526
	netip.MustParsePrefix("192.168.0.0/16"),  // private, RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking, RFC 2544
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2, RFC 5737
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3, RFC 5737
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast, RFC 5771
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, RFC 1112; includes 255.255.255.255
}

// IsNonGlobal reports whether a is an IPv4 address in one of the NonGlobal
// ranges. Anything that is not IPv4 is not an IPv4 special address, and
// reports false.
func IsNonGlobal(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	for _, p := range nonGlobal {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
