package rollup

import (
	"cmp"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/services/neighbors"
	"codeberg.org/monostack/gizmo/services/nsresponder"
	"codeberg.org/monostack/gizmo/web"
)

// limit is one of the bounds the services keep against floods and full
// tables, in the household's words, with the counters that grow each time
// it refuses or sheds something. The counters are on /metrics already;
// this is what the dashboard says about them.
type limit struct {
	key, what string
	count     func(Stats) uint64
}

// nat64Outcomes sums the NAT64's outcome counters of the given names.
func nat64Outcomes(names ...string) func(Stats) uint64 {
	return func(s Stats) uint64 {
		if s.NAT64 == nil {
			return 0
		}
		var n uint64
		for _, name := range names {
			n += s.NAT64.Counters[name]
		}
		return n
	}
}

func sum(m map[string]uint64, keys ...string) uint64 {
	var n uint64
	for _, k := range keys {
		n += m[k]
	}
	return n
}

func sumAll(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// deref is a service's Stats, or zero ones when it does not run, so that a
// limit reads 0 for a service that is not there.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

var limits = []limit{
	{"nat64_tables", "The IPv4 translation's tables were full: new connections to IPv4-only sites were refused.",
		nat64Outcomes("table_full", "filter_table_full", "host_table_full", "ports_exhausted")},
	{"nat64_host_share", "A host (or one network or device) reached its share of IPv4 translation sessions: its further new connections were refused, the others' were not.",
		nat64Outcomes("host_limit_refused", "prefix_limit_refused", "mac_limit_refused")},
	{"nat64_inbound", "Someone on the internet tried to open more sessions to a host through the IPv4 translation than one mapping may hold: the surplus was dropped.",
		nat64Outcomes("inbound_session_refused")},
	{"nat64_icmp_errors", "ICMP errors the IPv4 translation would have sent were held back by their rate limit.",
		nat64Outcomes("icmp_error_suppressed")},
	{"dns_fair_share", "A device asked the DNS more than its fair share while others waited: its surplus queries were dropped.",
		func(s Stats) uint64 {
			d := deref(s.DNS64)
			return d.Fairness.LongestQueue + d.Fairness.UpstreamShare + d.Fairness.TCPRefused + d.Overloaded
		}},
	{"dhcp4_pool", "The legacy IPv4 address pool was full: a device asked for an IPv4 address and got none.",
		func(s Stats) uint64 { return deref(s.DHCP4).PoolExhausted }},
	{"router_solicitations", "Router Solicitations came faster than the gizmo answers them: the surplus got the next periodic announcement instead.",
		func(s Stats) uint64 { return deref(s.RA).RSQueueFull }},
	{"nd_proxy", "Address announcements on the LAN came faster than the ND proxy checks them, or found its table full of proven addresses: the surplus was dropped.",
		func(s Stats) uint64 { return deref(s.NDProxy).Dropped }},
	{"host_table", "The list of devices was full: new devices displaced idle ones, or were left out.",
		func(s Stats) uint64 { return deref(s.HostTable).Evicted + deref(s.HostTable).Refused }},
	{"lan_impersonation", "A device on the LAN sent messages naming another device's hardware address (neighbour discovery, ARP or DHCPv4): they were ignored.",
		func(s Stats) uint64 {
			return deref(s.Neighbors).Ignored[neighbors.ReasonLLAddrMismatch] + deref(s.DHCP4).SourceMismatch
		}},
	{"dhcp4_rate", "A device or LAN port sent DHCPv4 requests faster than their rate limit: the surplus was dropped.",
		func(s Stats) uint64 { return deref(s.DHCP4).RateLimitedClient + deref(s.DHCP4).RateLimitedPort }},
	{"nd_proxy_claims", "The ND proxy's table was full: addresses claimed on the LAN but never proven by their host were forgotten first.",
		func(s Stats) uint64 { return deref(s.NDProxy).UnprovenEvicted }},
	{"ns_responder", "Neighbor Solicitations for the NAT64's on-link prefix came faster than their rate limit: the surplus went unanswered.",
		func(s Stats) uint64 {
			return sum(deref(s.NSResponder).Refused, nsresponder.ReasonRateSource, nsresponder.ReasonRateAll, nsresponder.ReasonSources)
		}},
	{"upstream_tables", "The upstream network announced more routers, DNS servers or NAT64 prefixes than the gizmo keeps: the surplus was left out.",
		func(s Stats) uint64 { return sumAll(deref(s.WAN).UpstreamFull) }},
	{"fast_path", "The fast path's tables were full: further flows took the slower, normal path.",
		func(s Stats) uint64 { return deref(s.Fastpath).FlowFull + deref(s.Fastpath).HostFull }},
	{"upnp", "Apps asked for more open ports (UPnP) than the limits allow, or asked too fast: those requests were refused.",
		func(s Stats) uint64 {
			return sum(deref(s.UPnP).Refused, "host_full", "full", "rate_limited") + deref(s.UPnP).ConnsLimited
		}},
}

// limitSeen is a limit's counter at the last look, its total since the
// daemon started, and when it last grew.
type limitSeen struct {
	raw, total uint64
	last       time.Time
}

// WatchLimits notes which limits' counters grew since the last call and
// returns those, each with how often it refused something since then. The
// counters start at zero with the daemon, so one that is above zero at
// the first look was hit since the start, and is taken as hit then.
func (r *Rollup) WatchLimits(s Stats, now time.Time) []web.LimitHit {
	r.mu.Lock()
	defer r.mu.Unlock()
	var grown []web.LimitHit
	for _, l := range limits {
		n := l.count(s)
		seen := r.limits[l.key]
		grew := n - seen.raw
		if n < seen.raw {
			// The service restarted and counts from zero again.
			grew = n
		}
		if grew > 0 {
			seen.total += grew
			seen.last = now
			grown = append(grown, web.LimitHit{Key: l.key, What: l.what, Count: grew, Last: now})
		}
		seen.raw = n
		r.limits[l.key] = seen
	}
	return grown
}

// LimitsHit are the limits hit since the daemon started, the most recent
// first.
func (r *Rollup) LimitsHit() []web.LimitHit {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []web.LimitHit
	for _, l := range limits {
		if seen := r.limits[l.key]; !seen.last.IsZero() {
			out = append(out, web.LimitHit{Key: l.key, What: l.what, Count: seen.total, Last: seen.last})
		}
	}
	slices.SortStableFunc(out, func(a, b web.LimitHit) int { return cmp.Compare(b.Last.UnixNano(), a.Last.UnixNano()) })
	return out
}
