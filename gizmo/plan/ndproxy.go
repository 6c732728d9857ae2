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

// SharedCandidate is the upstream /64 the gizmo can share with its LAN
// when it has no delegated prefix (RFC 7278: a /64 on the WAN and no
// DHCPv6-PD, as behind another home router or on a mobile link). It is
// the first upstream PIO that is on-link and autonomous, is a global /64,
// is still valid, and in which the WAN holds an address of its own (so the
// upstream routes the /64 onto the WAN link, where the ND proxy answers
// for the LAN hosts). ok is false when there is nothing to share: a valid
// delegation, the existing-network mode (the network's own router serves
// its /64), or no such prefix. The daemon shares it after SharedHoldoff
// (gizmo/derive.go), and the plans read the result, state.Shared.
func SharedCandidate(st *state.State, existingNetwork bool, now time.Time) (state.UpstreamPrefix, bool) {
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

// SharedHoldoff is how long a candidate must stand before the gizmo
// shares it. A DHCPv6-PD exchange takes a few seconds (RFC 8415 §18.2.1:
// the client collects Advertises for the first retransmission time, about
// 1 s, then Requests), and the WAN's SLAAC address usually comes first:
// sharing at once would hand the LAN an address in the WAN's /64 that
// stops working when the delegation arrives a moment later.
const SharedHoldoff = 10 * time.Second

// sharedNow returns state.Shared if it is still valid at now.
func sharedNow(st *state.State, now time.Time) (state.UpstreamPrefix, bool) {
	if sp := st.Shared; sp != nil && sp.ValidUntil.After(now) {
		return *sp, true
	}
	return state.UpstreamPrefix{}, false
}

// sharedRetired returns state.SharedRetired if it is still valid at now
// and not shared again.
func sharedRetired(st *state.State, now time.Time) (state.UpstreamPrefix, bool) {
	r := st.SharedRetired
	if r == nil || !r.ValidUntil.After(now) {
		return state.UpstreamPrefix{}, false
	}
	if sp, ok := sharedNow(st, now); ok && sp.Prefix.Masked() == r.Prefix.Masked() {
		return state.UpstreamPrefix{}, false
	}
	return *r, true
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

// sharedPIOs are the RA's PIOs for the shared /64 and a retired one.
// RFC 4861 §4.6.2: L=0, so that hosts send everything in it, traffic to
// the WAN-side neighbours in the same /64 included, to the gizmo, which
// routes it (RFC 7278 §4.3 and RFC 4389 §4.1); A=1 for SLAAC. The
// lifetimes never go beyond the upstream's, and the RFC 9096 §3.4 caps
// apply as to every PIO. A retired one is advertised with preferred
// lifetime 0 until its deadline (RFC 9096 §3.5), so that hosts stop using
// it for new connections at once.
func sharedPIOs(st *state.State, now time.Time) []ra.Prefix {
	var out []ra.Prefix
	if p, ok := sharedNow(st, now); ok {
		out = append(out, ra.Prefix{
			Prefix: p.Prefix.Masked(), OnLink: false, Autonomous: true,
			PreferredUntil: p.PreferredUntil, ValidUntil: p.ValidUntil,
			MaxPreferred: ndPreferredLimit, MaxValid: ndValidLimit,
		})
	}
	if r, ok := sharedRetired(st, now); ok {
		out = append(out, ra.Prefix{
			Prefix: r.Prefix.Masked(), OnLink: false, Autonomous: true,
			ValidUntil: r.ValidUntil, MaxPreferred: 0, MaxValid: ndValidLimit,
		})
	}
	return out
}

// sharedLANPrefixes are the shared /64 and a retired one still valid, as
// LAN prefixes (NAT64 sources, BCP 38): hosts keep using a retired one's
// addresses for open connections until it is invalid (RFC 9096 §3).
func sharedLANPrefixes(st *state.State, now time.Time) []netip.Prefix {
	var out []netip.Prefix
	if p, ok := sharedNow(st, now); ok {
		out = append(out, p.Prefix.Masked())
	}
	if r, ok := sharedRetired(st, now); ok {
		out = append(out, r.Prefix.Masked())
	}
	return out
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
// live on which side). With nothing shared now, a retired /64 stays
// proxied until it is invalid, so that open connections on it last as
// long as RFC 9096 §3 allows; the proxy serves one /64 at a time.
func NDProxy(st *state.State, now time.Time) ndproxy.Plan {
	sp, ok := sharedNow(st, now)
	if !ok {
		if sp, ok = sharedRetired(st, now); !ok {
			return ndproxy.Plan{}
		}
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
