package nsresponder

import (
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"

	"codeberg.org/monostack/gizmo/internal/filtertest"
)

// TestFilter runs the socket filter's packet checks in golang.org/x/net/bpf's
// VM: only NS whose target is in an answered prefix pass.
func TestFilter(t *testing.T) {
	own := netip.MustParsePrefix("2001:db8:1000:100:1::53/128")
	odd := netip.MustParsePrefix("2001:db8:1000:200::/100") // a bit boundary inside a 32-bit word
	prefixes := []netip.Prefix{nat64, own, odd}
	ns := func(target string) []byte {
		a := netip.MustParseAddr(target)
		return nsPacket(t, hostAddr, solicitedNode(a), a, hostMAC)
	}
	for _, tc := range []struct {
		name   string
		packet []byte
		pass   bool
	}{
		{"an NS for an address in the NAT64 /96", ns("2001:db8:1000:100::c633:6450"), true},
		{"an NS for the first address of the /96", ns("2001:db8:1000:100::"), true},
		{"an NS for the last address of the /96", ns("2001:db8:1000:100::ffff:ffff"), true},
		{"an NS for a /128 in the plan", ns("2001:db8:1000:100:1::53"), true},
		{"an NS inside a /100 (a mask within a word)", ns("2001:db8:1000:200::fff:ffff"), true},
		{"an NS just outside a /100", ns("2001:db8:1000:200::1000:0"), false},
		{"an NS for the same /64 outside the /96", ns("2001:db8:1000:100:0:1::1"), false},
		{"an NS for a neighbour on the link", ns("2001:db8:0:1::20"), false},
		{"an NA", ipPacket(t, hostAddr, gizmoLL, 255, &ndp.NeighborAdvertisement{TargetAddress: synthAddr}), false},
		{"an RS", ipPacket(t, hostAddr, netip.MustParseAddr("ff02::2"), 255, &ndp.RouterSolicitation{}), false},
		{"not ICMPv6", func() []byte { b := ns("2001:db8:1000:100::1"); b[6] = 17; return b }(), false},
	} {
		t.Run(tc.name, func(t *testing.T) { filtertest.Check(t, contentFilter(prefixes), tc.packet, tc.pass) })
	}
	t.Run("a filter without prefixes passes nothing", func(t *testing.T) {
		filtertest.Check(t, contentFilter(nil), ns("2001:db8:1000:100::1"), false)
	})
}

// TestFilterLargest checks that the longest filter a plan can ask for
// (MaxPrefixes prefixes of /127, each needing every word and a mask)
// assembles, with every jump in range, and still tells the last prefix
// from the others.
func TestFilterLargest(t *testing.T) {
	var prefixes []netip.Prefix
	for i := range MaxPrefixes {
		b := nat64.Addr().As16()
		b[15] = byte(2 * i)
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom16(b), 127))
	}
	if _, err := bpf.Assemble(filter(prefixes)); err != nil {
		t.Fatal(err)
	}
	last := prefixes[MaxPrefixes-1].Addr().Next()
	beyond := last.Next()
	t.Run("an NS for the last prefix's address passes", func(t *testing.T) {
		filtertest.Check(t, contentFilter(prefixes), nsPacket(t, hostAddr, solicitedNode(last), last, hostMAC), true)
	})
	t.Run("an NS for an address beyond every prefix is dropped", func(t *testing.T) {
		filtertest.Check(t, contentFilter(prefixes), nsPacket(t, hostAddr, solicitedNode(beyond), beyond, hostMAC), false)
	})
}
