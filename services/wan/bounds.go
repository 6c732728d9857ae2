package wan

import (
	"net/netip"
	"time"
)

// Bounds of the upstream tables. Any host on the WAN link can send RAs from
// as many link-local addresses as it likes (RFC 4861 §6.1.2 only asks for
// a link-local source and hop limit 255), each with dozens of options. An
// honest link has one upstream router, two with a redundant pair; every
// bound is far above that and far below what a flood could make the gizmo
// hold. When a table is full, entries announced by routers other than the
// chosen default router give way first (admit), so a flood churns among
// its own entries while the real router's stay; every eviction and every
// refused entry is counted (Stats.UpstreamFull).
const (
	// MaxRouters bounds the routers remembered (default routers and those
	// with router lifetime 0 whose options count). RFC 4861 §6.3.4: "a
	// host MAY choose not to store all of the router addresses discovered
	// via advertisements. However, a host MUST retain at least two router
	// addresses and SHOULD retain more."
	MaxRouters = 8
	// MaxPrefixes bounds the Prefix Information Options kept. Linux
	// configures at most 16 addresses per interface by SLAAC
	// (net.ipv6.conf.*.max_addresses), so a 17th on-link prefix would not
	// get an address anyway (RFC 4862 §5.5.3 leaves such limits to the
	// implementation).
	MaxPrefixes = 16
	// MaxRDNSS bounds the recursive DNS servers kept. RFC 8106 §5.3.1
	// lets a host bound its DNS Server List; resolvers use only the first
	// few (resolv.conf's MAXNS is 3), so 8 leaves room for two routers'
	// full lists.
	MaxRDNSS = 8
	// MaxRoutes bounds the Route Information Options kept (RFC 4191 §3.1:
	// a host's routing table is its own to limit). An ISP announces a
	// handful of more-specific routes, if any.
	MaxRoutes = 32
	// MaxPref64 bounds the NAT64 prefixes kept. A network has one NAT64
	// prefix (RFC 8781 §4), two while it renumbers; the gizmo uses one
	// (the chosen default router's, else the newest).
	MaxPref64 = 4

	// MaxOptionLifetime is the longest an option stays without being
	// announced again. An upstream repeats its RA at least every
	// MaxRtrAdvInterval (at most 1800 s, RFC 4861 §6.2.1), so a day is 48
	// missed RAs; an infinite lifetime (all ones, RFC 4861 §4.6.2, RFC
	// 8106 §5.1, RFC 4191 §2.3) from a forged RA would otherwise keep what
	// it said for as long as the gizmo runs. Longer lifetimes are clamped
	// to it and counted (Stats.LifetimesClamped).
	MaxOptionLifetime = 24 * time.Hour
)

// The upstream tables, the labels of Stats.UpstreamFull and
// Stats.LifetimesClamped.
const (
	tableRouters  = "routers"
	tablePrefixes = "prefixes"
	tableRDNSS    = "rdnss"
	tableRoutes   = "routes"
	tablePref64   = "pref64"
)

// clampLifetime returns the lifetime to keep and whether it was clamped.
func clampLifetime(d time.Duration) (time.Duration, bool) {
	if d > MaxOptionLifetime {
		return MaxOptionLifetime, true
	}
	return d, false
}

// sourced is what admit needs to know of a table's entries: which router
// announced it and when it ends (for routers: when last heard).
type sourced interface {
	source() netip.Addr
	end() time.Time
}

// admit makes room in m for key, announced by from, when the table holds
// limit entries: a known key or a table with room needs none. Otherwise
// the victim is an entry from a router other than chosen, the one that ends
// first; only an entry from chosen itself may displace chosen's own. It
// reports whether key may be stored, and full when the table had no room
// (an entry was evicted, or key is refused): the caller counts it.
func admit[K comparable, V sourced](m map[K]V, key K, from, chosen netip.Addr, limit int) (ok, full bool) {
	if _, known := m[key]; known || len(m) < limit {
		return true, false
	}
	var victim K
	var vEnd time.Time
	var vFrom netip.Addr
	found := false
	better := func(k K, v V) bool {
		if !found {
			return true
		}
		if !v.end().Equal(vEnd) {
			return v.end().Before(vEnd)
		}
		return v.source().Less(vFrom)
	}
	for k, v := range m {
		if v.source() == chosen && chosen.IsValid() {
			continue
		}
		if better(k, v) {
			victim, vEnd, vFrom, found = k, v.end(), v.source(), true
		}
	}
	if !found {
		if from != chosen {
			return false, true // a stranger does not displace the chosen router
		}
		for k, v := range m {
			if better(k, v) {
				victim, vEnd, vFrom, found = k, v.end(), v.source(), true
			}
		}
	}
	delete(m, victim)
	return true, true
}

// selectRouter picks the default router at now (RFC 4861 §6.3.6, RFC 4191
// §3.2): the highest preference among routers whose lifetime has not
// ended. The router in use stays while no other has a higher preference:
// §6.3.6 lets a host keep returning the same router, and it keeps a flood
// of equal-preference RAs from new sources from taking the role. Among
// equals for a new choice, the router known longest wins, then the lowest
// address.
func (u *upstream) selectRouter(now time.Time) {
	cur, ok := u.routers[u.chosen]
	curAlive := ok && now.Before(cur.lifetimeUntil)
	var best *routerInfo
	var bestAddr netip.Addr
	for a, r := range u.routers {
		if !now.Before(r.lifetimeUntil) {
			continue
		}
		if best == nil || prefInt(r.pref) > prefInt(best.pref) ||
			prefInt(r.pref) == prefInt(best.pref) && (r.firstSeen.Before(best.firstSeen) ||
				r.firstSeen.Equal(best.firstSeen) && a.Less(bestAddr)) {
			best, bestAddr = r, a
		}
	}
	switch {
	case best == nil:
		u.chosen = netip.Addr{}
	case curAlive && prefInt(cur.pref) >= prefInt(best.pref):
		// keep it
	default:
		u.chosen = bestAddr
	}
}

func (r *routerInfo) source() netip.Addr { return r.addr }
func (r *routerInfo) end() time.Time     { return r.lastSeen }

func (p prefixEntry) source() netip.Addr { return p.from }
func (p prefixEntry) end() time.Time     { return p.ValidUntil }

func (e timedEntry) source() netip.Addr { return e.from }
func (e timedEntry) end() time.Time     { return e.until }

func (r routeEntry) source() netip.Addr { return r.from }
func (r routeEntry) end() time.Time     { return r.ValidUntil }
