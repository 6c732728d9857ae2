package plan

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/ndproxy"
	"codeberg.org/monostack/gizmo/services/ra"
)

// SharedPrefix is the upstream /64 the gizmo shares with its LAN when it
// has no delegated prefix (RFC 7278: a /64 on the WAN and no DHCPv6-PD, as
// behind another home router or on a mobile link). It is the first
// upstream PIO that is on-link and autonomous, is a global /64, is still
// valid, and in which the WAN holds an address of its own (so the upstream
// routes the /64 onto the WAN link, where the ND proxy answers for the LAN
// hosts). ok is false when there is nothing to share: a valid delegation,
// the existing-network mode (the network's own router serves its /64), or
// no such prefix.
func SharedPrefix(st *state.State, existingNetwork bool, now time.Time) (state.UpstreamPrefix, bool) {
	if existingNetwork || !st.WAN.Up {
		return state.UpstreamPrefix{}, false
	}
	if d := st.Delegated; d != nil && d.ValidUntil.After(now) {
		// RFC 7278 §4.3 is the fallback for a missing delegation only.
		return state.UpstreamPrefix{}, false
	}
	for _, p := range st.WAN.Prefixes {
		if !shareable(p, now) {
			continue
		}
		for _, a := range st.WAN.Addrs {
			if p.Prefix.Contains(a.Addr()) {
				return p, true
			}
		}
	}
	return state.UpstreamPrefix{}, false
}

// shareable: RFC 7278 §4.3 shares the 3GPP /64, an on-link prefix the
// upstream hands out for SLAAC; SLAAC on the LAN needs a /64 too
// (RFC 4862 §5.5.3 d). ULAs and link-local prefixes are not the upstream's
// global addressing.
func shareable(p state.UpstreamPrefix, now time.Time) bool {
	a := p.Prefix.Addr()
	return p.OnLink && p.Autonomous && p.Prefix.Bits() == 64 && a.Is6() && !a.Is4In6() &&
		a.IsGlobalUnicast() && !a.IsPrivate() && p.ValidUntil.After(now)
}

// sharedPIO is the RA's PIO for the shared /64. RFC 4861 §4.6.2: L=0, so
// that hosts send everything in it, traffic to the WAN-side neighbours in
// the same /64 included, to the gizmo, which routes it (RFC 7278 §4.3 and
// RFC 4389 §4.1); A=1 for SLAAC. The lifetimes never go beyond the
// upstream's, and the RFC 9096 §3.4 caps apply as to every PIO.
func sharedPIO(p state.UpstreamPrefix) ra.Prefix {
	return ra.Prefix{
		Prefix: p.Prefix.Masked(), OnLink: false, Autonomous: true,
		PreferredUntil: p.PreferredUntil, ValidUntil: p.ValidUntil,
		MaxPreferred: ndPreferredLimit, MaxValid: ndValidLimit,
	}
}

// sharedLANPrefix is the shared /64 as one of the LAN's prefixes (NAT64
// sources, BCP 38), or nothing.
func sharedLANPrefix(st *state.State, existingNetwork bool, now time.Time) []netip.Prefix {
	if p, ok := SharedPrefix(st, existingNetwork, now); ok {
		return []netip.Prefix{p.Prefix.Masked()}
	}
	return nil
}

// NDProxyHostMaxAge bounds the host sightings the plan passes on: an
// address last seen longer ago than this is left to the service's own
// evidence (DAD, neighbour states), so that a host long gone is not
// proxied again because the daemon still remembers it.
const NDProxyHostMaxAge = 10 * time.Minute

// NDProxy is the ND proxy's plan: the shared /64 (none: proxy nothing),
// the gizmo's own addresses in it (never proxied: the kernel answers for
// them itself), and the LAN host addresses in it that the daemon saw
// recently, with when (RFC 4389 §4.1: the proxy learns which addresses
// live on which side).
func NDProxy(st *state.State, existingNetwork bool, now time.Time) ndproxy.Plan {
	sp, ok := SharedPrefix(st, existingNetwork, now)
	if !ok {
		return ndproxy.Plan{}
	}
	prefix := sp.Prefix.Masked()
	p := ndproxy.Plan{Prefix: prefix}
	for _, a := range st.WAN.Addrs {
		if prefix.Contains(a.Addr()) && !slices.Contains(p.Own, a.Addr()) {
			p.Own = append(p.Own, a.Addr())
		}
	}
	slices.SortFunc(p.Own, netip.Addr.Compare)
	for _, mac := range slices.Sorted(maps.Keys(st.Hosts)) {
		h := st.Hosts[mac]
		if h == nil {
			continue
		}
		for a, seen := range h.Addrs {
			a = a.WithZone("")
			if !prefix.Contains(a) || now.Sub(seen) > NDProxyHostMaxAge || slices.Contains(p.Own, a) {
				continue
			}
			p.Hosts = append(p.Hosts, ndproxy.Sighting{Addr: a, At: seen})
		}
	}
	slices.SortFunc(p.Hosts, func(a, b ndproxy.Sighting) int { return a.Addr.Compare(b.Addr) })
	return p
}
