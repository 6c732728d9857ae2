package nsresponder

import (
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

// TestFilter runs the socket filter's packet checks in golang.org/x/net/bpf's
// VM: only NS whose target is in an answered prefix pass.
func TestFilter(t *testing.T) {
	own := netip.MustParsePrefix("2001:db8:1000:100:1::53/128")
	odd := netip.MustParsePrefix("2001:db8:1000:200::/100") // a bit boundary inside a 32-bit word
	prefixes := []netip.Prefix{nat64, own, odd}
	vm, err := bpf.NewVM(contentFilter(prefixes))
	if err != nil {
		t.Fatal(err)
	}
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
		t.Run(tc.name, func(t *testing.T) {
			n, err := vm.Run(tc.packet)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tc.pass {
				t.Errorf("filter returned %d, want pass=%v", n, tc.pass)
			}
		})
	}
	empty, err := bpf.NewVM(contentFilter(nil))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := empty.Run(ns("2001:db8:1000:100::1")); n != 0 {
		t.Errorf("a filter without prefixes passed %d bytes", n)
	}
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
	vm, err := bpf.NewVM(contentFilter(prefixes))
	if err != nil {
		t.Fatal(err)
	}
	last := prefixes[MaxPrefixes-1].Addr().Next()
	if n, _ := vm.Run(nsPacket(t, hostAddr, solicitedNode(last), last, hostMAC)); n == 0 {
		t.Errorf("the last prefix's %v was dropped", last)
	}
	beyond := last.Next()
	if n, _ := vm.Run(nsPacket(t, hostAddr, solicitedNode(beyond), beyond, hostMAC)); n != 0 {
		t.Errorf("%v beyond every prefix passed", beyond)
	}
}
