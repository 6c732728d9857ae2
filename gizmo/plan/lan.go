package plan

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/lanif"
)

// LAN returns the addresses the gizmo holds on its LAN interface: ::1 and
// the DNS addresses in the management /64, ::1 in the current delegation's
// /64 and in each retired one, and the legacy IPv4 address.
func LAN(st *state.State, now time.Time) lanif.Plan {
	n := NetworkOf(st, now)
	var p lanif.Plan
	if n.Management.IsValid() {
		p.Addrs = append(p.Addrs, lanif.Addr{Prefix: netip.PrefixFrom(n.RouterULA, 64)})
		// The DNS addresses share the /64's route with ::1.
		for _, a := range []netip.Addr{n.DNS.RDNSS, n.DNS.DHCPv6} {
			if a.IsValid() {
				p.Addrs = append(p.Addrs, lanif.Addr{Prefix: netip.PrefixFrom(a, 64), NoPrefixRoute: true})
			}
		}
	}
	if d := n.Delegated; d != nil {
		p.Addrs = append(p.Addrs, lanif.Addr{
			Prefix:         netip.PrefixFrom(d.Router, 64),
			PreferredUntil: d.PreferredUntil,
			ValidUntil:     d.ValidUntil,
		})
	}
	// RFC 9096 §3: hosts may keep using addresses in a retired prefix until it
	// becomes invalid, so the gizmo keeps the route to it until then.
	for _, r := range n.Retired {
		p.Addrs = append(p.Addrs, lanif.Addr{
			Prefix:         netip.PrefixFrom(r.Router, 64),
			PreferredUntil: now, // deprecated
			ValidUntil:     r.ValidUntil,
		})
	}
	if n.Legacy4.IsValid() {
		p.Addrs = append(p.Addrs, lanif.Addr{Prefix: n.Legacy4})
	}
	// The CLAT's address in the LAN /64 of a /64 delegation: held here,
	// deprecated so that the gizmo's own traffic never picks it as source
	// (RFC 6724 rule 3), so that the kernel defends it against a host's
	// DAD. clat_in takes its packets on the uplink before the stack.
	if st.Line == state.LineIPv6OnlyNAT64 {
		if a, place := CLATAddress(n); place == CLATOnLAN {
			p.Addrs = append(p.Addrs, lanif.Addr{Prefix: netip.PrefixFrom(a, 64), NoPrefixRoute: true, PreferredUntil: now})
		}
	}
	return p
}

// ExistingNetworkLAN is the LAN address plan in the existing-network mode,
// where the one port is the WAN too. lanif removes every address that is
// not in its plan, so the port's upstream addresses (SLAAC from the
// network's router, the DHCPv4 lease) are in the plan: without them the
// gizmo could not reach an upstream resolver or translate to IPv4. The
// delegations' router addresses are left out: the first /64 of the
// delegation is the on-link /64, whose ::1 lies in the NAT64 /96.
//
// In the on-link /64 (State.OnLink) the gizmo holds only its DNS64
// address, where the kernel answers Neighbor Solicitations for it, and
// without the /64's route: the /64 is on-link for the hosts, and the gizmo
// itself sends nothing to the rest of it.
func ExistingNetworkLAN(st *state.State, now time.Time) lanif.Plan {
	n := NetworkOf(st, now)
	out := lanif.Plan{}
	for _, a := range LAN(st, now).Addrs {
		if ip := a.Prefix.Addr(); !n.delegatedAddr(ip) && !st.OnLink.Contains(ip) {
			out.Addrs = append(out.Addrs, a)
		}
	}
	if dns := n.DNS.RDNSS; st.OnLink.IsValid() && st.OnLink.Contains(dns) {
		out.Addrs = append(out.Addrs, lanif.Addr{Prefix: netip.PrefixFrom(dns, 64), NoPrefixRoute: true})
	}
	for _, a := range st.WAN.Addrs {
		if a.Addr().Is6() && !a.Addr().IsLinkLocalUnicast() && !n.delegatedAddr(a.Addr()) &&
			!slices.ContainsFunc(out.Addrs, func(x lanif.Addr) bool { return x.Prefix == a }) {
			out.Addrs = append(out.Addrs, lanif.Addr{Prefix: a})
		}
	}
	if v4 := n.IPv4; v4 != nil {
		out.Addrs = append(out.Addrs, lanif.Addr{Prefix: v4.Addr, ValidUntil: v4.Expires})
	}
	return out
}

// ExistingNetworkPrefixes are the on-link /64s of the network the one-port
// gizmo joined (its SLAAC addresses' prefixes): in the existing-network
// mode the hosts there are the NAT64's clients, not only the ULA's.
func ExistingNetworkPrefixes(st *state.State, now time.Time) []netip.Prefix {
	n := NetworkOf(st, now)
	var out []netip.Prefix
	for _, a := range st.WAN.Addrs {
		ip := a.Addr()
		if !ip.Is6() || !ip.IsGlobalUnicast() || ip.IsPrivate() || n.delegatedAddr(ip) {
			continue
		}
		if p := a.Masked(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
