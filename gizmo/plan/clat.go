package plan

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/special4"
	"codeberg.org/monostack/gizmo/services/clat"
)

// CLATPlace says where the CLAT's address lives and who answers for it.
type CLATPlace int

const (
	// CLATNone: there is no IPv6 prefix to take an address from.
	CLATNone CLATPlace = iota
	// CLATDedicated: a /64 of the delegation of its own, routed to the
	// gizmo by the ISP; nothing needs to answer for it.
	CLATDedicated
	// CLATOnLAN: in the LAN /64 (a /64 delegation), held on the LAN
	// interface so that no host takes it.
	CLATOnLAN
	// CLATOnWAN: in the WAN's /64 shared with the LAN (no delegation),
	// held on the uplink so that the ISP's router finds it.
	CLATOnWAN
)

// CLATAddress is the CLAT's IPv6 address (RFC 6877 §6.3: a dedicated /64
// is best): the last /64 of a delegation shorter than /64, the LAN gets
// the first; with a /64 delegation an address in it, and without one an
// address in the shared WAN /64. Its interface identifier is
// state.CLATIID.
func CLATAddress(n Network) (netip.Addr, CLATPlace) {
	switch d := n.Delegated; {
	case d != nil && d.Prefix.Bits() < 64:
		return state.WithIID(lastSlash64(d.Prefix), state.CLATIID), CLATDedicated
	case d != nil:
		return state.WithIID(d.LAN, state.CLATIID), CLATOnLAN
	case n.Shared != nil:
		return state.WithIID(n.Shared.Prefix, state.CLATIID), CLATOnWAN
	}
	return netip.Addr{}, CLATNone
}

// lastSlash64 is the last /64 inside p (p no longer than /64).
func lastSlash64(p netip.Prefix) netip.Prefix {
	b := p.Masked().Addr().As16()
	for i := p.Bits(); i < 64; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// CLAT is the CLAT's plan: on an IPv6-only line with the ISP's NAT64
// (state.LineIPv6OnlyNAT64), translate the legacy hosts' IPv4 towards the
// NAT64 prefix in force from the CLAT's address. Off otherwise, and on an
// existing network, whose router serves its legacy hosts.
func CLAT(st *state.State, existingNetwork bool, now time.Time) clat.Plan {
	if existingNetwork || st.Line != state.LineIPv6OnlyNAT64 || !st.WAN.Up || !st.Pref64.IsValid() {
		return clat.Plan{}
	}
	addr, place := CLATAddress(NetworkOf(st, now))
	if place == CLATNone {
		return clat.Plan{}
	}
	p := clat.Plan{
		Pref64: st.Pref64.Masked(), Address: addr, ClaimOnWAN: place == CLATOnWAN,
		WANIfindex: st.WAN.Ifindex, WANMTU: st.WAN.MTU,
	}
	// RFC 6052 §3.1: the well-known prefix never carries a non-global
	// IPv4 address; the legacy LAN's own route is more specific.
	if p.Pref64 == state.WellKnownPref64 {
		p.Unreachable = slices.Clone(special4.NonGlobal())
	}
	return p
}

// Discovery is RFC 7050 discovery's plan: ask the upstream resolvers on a
// line that has IPv6 and neither IPv4 nor a PREF64 in the ISP's RA (RFC
// 8781 comes first: RFC 7050 is for networks without it). The gizmo's own
// listening addresses are never asked (a WAN that echoes them back would
// make a loop).
func Discovery(st *state.State, now time.Time) clat.DiscoveryPlan {
	w := st.WAN
	if !w.Up || w.UpstreamPref64.IsValid() || w.IPv4.ValidAt(now) {
		return clat.DiscoveryPlan{}
	}
	own := map[netip.Addr]bool{}
	dnsListeners(st.LAN.DNS, own)
	p := clat.DiscoveryPlan{LinkUp: w.LinkUpSince}
	for _, r := range st.UpstreamDNS {
		if r.IsValid() && !own[r.Addr().Unmap()] {
			p.Resolvers = append(p.Resolvers, r)
		}
	}
	return p
}
