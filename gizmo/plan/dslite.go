package plan

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dslite"
)

// DSLite is the B4's end of the softwire (RFC 6333 §5) as the plans see
// it: the AFTR by name and address, and the gizmo's IPv6 address the
// softwire runs from.
type DSLite struct {
	AFTRName string
	AFTR, B4 netip.Addr
}

// IPv4 is the gizmo's IPv4 address on the softwire, RFC 6333 §5.7's
// 192.0.0.2: the NAT64's pool and the NAT44's source.
func (DSLite) IPv4() netip.Addr { return dslite.B44 }

// dsliteOf decides the softwire: it runs while the WAN is up with no IPv4
// lease of its own (RFC 6333 §5: DS-Lite is how an IPv6-only line carries
// IPv4; a native lease wins), an AFTR is named (RFC 6334) and resolved,
// and the gizmo has a global IPv6 address for the B4 (B4Of).
func dsliteOf(st *state.State, n Network) *DSLite {
	w := st.WAN
	if !w.Up || n.IPv4 != nil || w.AFTRName == "" || !w.AFTR.IsValid() {
		return nil
	}
	b4 := B4Of(st, n)
	if !b4.IsValid() || b4 == w.AFTR {
		return nil
	}
	return &DSLite{AFTRName: w.AFTRName, AFTR: w.AFTR, B4: b4}
}

// B4Of is the B4's IPv6 address: the WAN's first global address (SLAAC
// or static), else, on a line that delegates a prefix but numbers no WAN
// link (common on cable), the gizmo's own address in the delegated LAN
// /64, which the ISP routes to the gizmo with the rest of the delegation.
// Invalid when there is neither.
func B4Of(st *state.State, n Network) netip.Addr {
	for _, a := range st.WAN.Addrs {
		if ip := a.Addr(); ip.Is6() && !ip.Is4In6() && ip.IsGlobalUnicast() && !ip.IsPrivate() {
			return ip
		}
	}
	if n.Delegated != nil {
		return n.Delegated.Router
	}
	return netip.Addr{}
}

// DSLitePlan is the B4 service's plan: the AFTR's name to resolve through
// the ISP's resolvers (RFC 6334 §4: the B4 resolves it with the DNS the
// ISP provides: the RA's RDNSS, then DHCPv6's, never -dns-upstream, which
// may be a public resolver that does not know the ISP's names), and the
// softwire while NetworkOf says it runs. Nothing in the existing-network
// mode, whose router has the line.
func DSLitePlan(st *state.State, existingNetwork bool, now time.Time) dslite.Plan {
	var p dslite.Plan
	if existingNetwork || st.WAN.AFTRName == "" {
		return p
	}
	p.AFTRName = st.WAN.AFTRName
	for _, a := range slices.Concat(st.WAN.RDNSS, st.WAN.DHCPv6DNS) {
		ap := netip.AddrPortFrom(a, 53)
		if a.IsValid() && !slices.Contains(p.Resolvers, ap) {
			p.Resolvers = append(p.Resolvers, ap)
		}
	}
	n := NetworkOf(st, now)
	if d := n.DSLite; d != nil {
		p.Softwire = dslite.Softwire{AFTR: d.AFTR, B4: d.B4, Interface: st.WAN.Interface, Ifindex: st.WAN.Ifindex, MTU: st.WAN.MTU}
	}
	return p
}
