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

// sharedPIOs are the RA's PIOs for the shared /64 and a retired one.
// RFC 4861 §4.6.2: L=0, so that hosts send everything in it, traffic to
// the WAN-side neighbours in the same /64 included, to the gizmo, which
// routes it (RFC 7278 §4.3 and RFC 4389 §4.1); A=1 for SLAAC. The
// lifetimes never go beyond the upstream's, and the RFC 9096 §3.4 caps
// apply as to every PIO. A retired one is advertised with preferred
// lifetime 0 until its deadline (RFC 9096 §3.5), so that hosts stop using
// it for new connections at once.
func sharedPIOs(n Network) []ra.Prefix {
	var out []ra.Prefix
	if p := n.Shared; p != nil {
		out = append(out, ra.Prefix{
			Prefix: p.Prefix, OnLink: false, Autonomous: true,
			PreferredUntil: p.PreferredUntil, ValidUntil: p.ValidUntil,
			MaxPreferred: ndPreferredLimit, MaxValid: ndValidLimit,
		})
	}
	if r := n.SharedRetired; r != nil {
		out = append(out, ra.Prefix{
			Prefix: r.Prefix, OnLink: false, Autonomous: true,
			ValidUntil: r.ValidUntil, MaxPreferred: 0, MaxValid: ndValidLimit,
		})
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
	n := NetworkOf(st, now)
	sp := n.Shared
	if sp == nil {
		if sp = n.SharedRetired; sp == nil {
			return ndproxy.Plan{}
		}
	}
	prefix := sp.Prefix
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
