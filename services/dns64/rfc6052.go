package dns64

import (
	"fmt"
	"net/netip"

	"codeberg.org/monostack/gizmo/internal/special4"
)

// RFC 6052 §2.2: where the 32 IPv4 bits go for each allowed prefix length.
// Bits 64–71 (byte 8, the "u" octet) are always zero and never carry address
// bits, so the IPv4 address is split around it for /40, /48 and /56.

// validPref64Len reports whether n is one of the prefix lengths RFC 6052 §2.2
// allows.
func validPref64Len(n int) bool {
	switch n {
	case 32, 40, 48, 56, 64, 96:
		return true
	}
	return false
}

// v4Positions returns the byte offsets in the IPv6 address that hold the four
// IPv4 bytes for a prefix of length n (RFC 6052 §2.2, Figure 1).
func v4Positions(n int) [4]int {
	switch n {
	case 32:
		return [4]int{4, 5, 6, 7}
	case 40:
		return [4]int{5, 6, 7, 9}
	case 48:
		return [4]int{6, 7, 9, 10}
	case 56:
		return [4]int{7, 9, 10, 11}
	case 64:
		return [4]int{9, 10, 11, 12}
	default: // 96
		return [4]int{12, 13, 14, 15}
	}
}

// Embed returns the IPv4-embedded IPv6 address for v4 under prefix
// (RFC 6052 §2.2). The u octet and the suffix are zero.
func Embed(prefix netip.Prefix, v4 netip.Addr) (netip.Addr, error) {
	if !prefix.Addr().Is6() || !validPref64Len(prefix.Bits()) {
		return netip.Addr{}, fmt.Errorf("dns64: %s is not an RFC 6052 prefix (/32, /40, /48, /56, /64 or /96)", prefix)
	}
	if !v4.Is4() {
		return netip.Addr{}, fmt.Errorf("dns64: %s is not an IPv4 address", v4)
	}
	b := prefix.Masked().Addr().As16()
	b[8] = 0 // RFC 6052 §2.2: bits 64 to 71 MUST be zero.
	for i := 9; i < 16 && prefix.Bits() < 96; i++ {
		b[i] = 0 // suffix: RFC 6052 §2.2 says it SHOULD be zero.
	}
	four := v4.As4()
	for i, pos := range v4Positions(prefix.Bits()) {
		b[pos] = four[i]
	}
	return netip.AddrFrom16(b), nil
}

// Extract returns the IPv4 address embedded in a under prefix, the reverse
// of Embed (RFC 6052 §2.2). It fails when a is not inside prefix.
func Extract(prefix netip.Prefix, a netip.Addr) (netip.Addr, error) {
	if !validPref64Len(prefix.Bits()) || !prefix.Addr().Is6() {
		return netip.Addr{}, fmt.Errorf("dns64: %s is not an RFC 6052 prefix", prefix)
	}
	if !a.Is6() || a.Is4In6() || !prefix.Masked().Contains(a) {
		return netip.Addr{}, fmt.Errorf("dns64: %s is not inside %s", a, prefix)
	}
	b := a.As16()
	var four [4]byte
	for i, pos := range v4Positions(prefix.Bits()) {
		four[i] = b[pos]
	}
	return netip.AddrFrom4(four), nil
}

// ipv4onlyAddrs are the addresses of ipv4only.arpa (RFC 7050 §2.2,
// RFC 8880 §2). They sit in 192.0.0.0/24 but are exactly what RFC 7050 says
// must be synthesized with the well-known prefix so that clients can learn it.
var ipv4onlyAddrs = []netip.Addr{
	netip.MustParseAddr("192.0.0.170"),
	netip.MustParseAddr("192.0.0.171"),
}

// WellKnownPrefix is 64:ff9b::/96 (RFC 6052 §2.1).
var WellKnownPrefix = netip.MustParsePrefix("64:ff9b::/96")

// mappable reports whether v4 may be embedded in prefix: anything goes under
// a network-specific prefix, but the well-known prefix only carries global
// IPv4 addresses (RFC 6052 §3.1), plus the ipv4only.arpa pair (RFC 7050 §2.2).
func mappable(prefix netip.Prefix, v4 netip.Addr) bool {
	if prefix.Masked() != WellKnownPrefix {
		return true
	}
	for _, a := range ipv4onlyAddrs {
		if v4 == a {
			return true
		}
	}
	return !special4.IsNonGlobal(v4)
}
