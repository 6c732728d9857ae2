package dslite

import (
	"fmt"
	"net/netip"
	"slices"
)

// The softwire's IPv4 addressing, RFC 6333 §5.7: 192.0.0.0/29 is reserved
// for DS-Lite, the AFTR's end is 192.0.0.1 and the B4's 192.0.0.2.
var (
	Prefix4 = netip.MustParsePrefix("192.0.0.0/29")
	AFTR4   = netip.MustParseAddr("192.0.0.1")
	B44     = netip.MustParseAddr("192.0.0.2")
)

// Overhead is what the softwire adds to each IPv4 packet: the IPv6 header
// (RFC 2473 §3.1), with no extension headers.
const Overhead = 40

// HopLimit is the outer header's hop limit (RFC 2473 §6.3 asks for the
// tunnel's own value, not the inner TTL).
const HopLimit = 64

// Plan is what the service should do, computed by the daemon
// (gizmo/plan.DSLite). The zero Plan resolves nothing and runs no softwire.
type Plan struct {
	// AFTRName is the AFTR's FQDN from DHCPv6 (OPTION_AFTR_NAME, RFC 6334
	// §3); empty: none known. The service resolves it (AAAA, RFC 6334 §4)
	// through Resolvers and reports the address (Config.OnAFTR).
	AFTRName  string
	Resolvers []netip.AddrPort
	// Softwire is the B4; zero: off.
	Softwire Softwire
}

// Softwire is the B4's end of the softwire (RFC 6333 §5).
type Softwire struct {
	// AFTR is the AFTR's IPv6 address, B4 the gizmo's: the outer
	// destination and source of what it sends, and the other way round
	// of what it accepts.
	AFTR, B4 netip.Addr
	// Interface and Ifindex are the WAN's; MTU its IPv6 MTU, of which the
	// softwire's IPv4 MTU is Overhead less (RFC 6333 §5.3).
	Interface string
	Ifindex   int
	MTU       int
}

// Enabled reports whether the softwire runs.
func (s Softwire) Enabled() bool { return s.AFTR.IsValid() }

// MTU4 is the IPv4 MTU of the softwire: the WAN's MTU less the outer
// header, and at least IPv4's minimum of 68 (RFC 791); a WAN MTU not known
// counts as Ethernet's 1500. RFC 6333 §5.3 lets a B4 fragment the outer
// packet to offer 1500; the gizmo offers the smaller MTU instead, with
// Fragmentation Needed from the route and an MSS clamp, which no AFTR has
// to reassemble.
func (s Softwire) MTU4() int {
	mtu := s.MTU
	if mtu < 1280 || mtu > 65535 {
		mtu = 1500
	}
	return max(mtu-Overhead, 68)
}

// MSS is the largest TCP segment that fits the softwire: its MTU less the
// IPv4 and TCP headers (RFC 9293 §3.7.1).
func (s Softwire) MSS() int { return s.MTU4() - 40 }

// Check reports what is wrong with an enabled softwire.
func (s Softwire) Check() error {
	if !s.Enabled() {
		return nil
	}
	for _, a := range []netip.Addr{s.AFTR, s.B4} {
		if !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() {
			return fmt.Errorf("dslite: %s is not a global IPv6 address", a)
		}
	}
	if s.AFTR == s.B4 {
		return fmt.Errorf("dslite: the AFTR and the B4 are both %s", s.AFTR)
	}
	if s.Interface == "" || s.Ifindex <= 0 {
		return fmt.Errorf("dslite: no WAN interface")
	}
	return nil
}

// Equal reports whether two plans ask for the same.
func (p Plan) Equal(q Plan) bool {
	return p.AFTRName == q.AFTRName && slices.Equal(p.Resolvers, q.Resolvers) && p.Softwire == q.Softwire
}
