package plan

import (
	"net/netip"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/ra"
)

// RAOptions are the daemon's settings for its Router Advertisements that are
// not part of the state.
type RAOptions struct {
	// MaxInterval is MaxRtrAdvInterval (RFC 4861 §6.2.1); zero means the
	// RFC's default of 600 s. The lab and tests use 10–30 s.
	MaxInterval time.Duration
	// ExistingNetwork is the "NAT64 on an existing network" mode: the gizmo
	// sits on a LAN that already has a router, and only adds NAT64 and DNS64.
	// It then advertises router lifetime 0 (it must not become the hosts'
	// default router), no prefix for SLAAC, its on-link /64 where the NAT64
	// prefix and the DNS64 live, routes (RIO) to the NAT64 prefix and its
	// ULA /48, PREF64 and RDNSS (existingNetworkRA).
	ExistingNetwork bool
}

// RFC 9096 §3.4 limits for the lifetimes a CE router advertises on the LAN,
// so that hosts drop stale configuration within 45 and 90 minutes.
const (
	ndPreferredLimit = 2700 * time.Second // ND_PREFERRED_LIMIT
	ndValidLimit     = 5400 * time.Second // ND_VALID_LIMIT
)

// curHopLimit is AdvCurHopLimit: the IANA default TTL that RFC 4861 §6.2.1
// points to (RFC 1700, "Assigned Numbers": 64).
const curHopLimit = 64

// RA computes the Router Advertisement for the LAN from the state at now.
func RA(st *state.State, opt RAOptions, now time.Time) ra.Plan {
	p := ra.Plan{
		MaxInterval:     opt.MaxInterval,
		HopLimit:        curHopLimit,
		MTU:             st.LAN.MTU,
		SourceLinkLayer: st.LAN.HardwareAddr,
	}
	interval := p.Interval()
	// RFC 8106 §5.1 and §5.2: RDNSS and DNSSL lifetimes at least
	// 3 × MaxRtrAdvInterval, so that one or two lost RAs do not drop them;
	// RFC 8781 §4.1 asks the same of PREF64.
	optionLifetime := 3 * interval
	n := NetworkOf(st, now)
	if opt.ExistingNetwork {
		existingNetworkRA(&p, st, n, optionLifetime, now)
		return p
	}
	upstream := hasUpstream(st, n, now)

	// RFC 4861 §4.2 and RFC 8415 §6.1: O=1 tells hosts that stateless
	// DHCPv6 offers more configuration (the DNS servers); M=0 because no
	// addresses are leased by DHCPv6.
	p.Other = true
	// RFC 7084 G-4/G-5: a CE router with no default router on its WAN must
	// not advertise itself as default router (router lifetime 0). The
	// gizmo also counts an IPv4 lease with a NAT64 prefix as an upstream:
	// the IPv6-only LAN then reaches the internet through its NAT64 (the
	// ipv4-only-upstream deployment), and most hosts do not install the
	// RIO that would be the only other way there.
	if upstream {
		// RFC 9096 §3.4: Router Lifetime ND_PREFERRED_LIMIT; it is above
		// MaxRtrAdvInterval (at most 1800 s), as RFC 4861 §6.2.1 requires.
		p.RouterLifetime = ndPreferredLimit
	}
	p.Prefixes = lanPrefixes(n)
	// RFC 8106 §5.2: the search list for names on the LAN.
	p.DNSSL, p.DNSSLLifetime = []string{LocalDomain}, optionLifetime

	// RFC 4191 §2.3 routes: the ULA /48 (the management /64 is on-link,
	// the rest of the /48 is behind the gizmo) and the NAT64 prefix. Their
	// lifetime follows the router lifetime the gizmo would advertise
	// (RFC 9096 §3.4).
	if n.ULA.IsValid() {
		p.Routes = append(p.Routes, ra.Route{Prefix: n.ULA, Lifetime: ndPreferredLimit})
	}
	// Without any IPv4 (state.LineIPv6Only) there is no NAT64 to route
	// to or to announce.
	pref64 := st.Pref64.IsValid() && st.Line != state.LineIPv6Only
	if pref64 && upstream {
		// RFC 7084 G-4's reasoning: do not attract traffic that cannot be
		// forwarded. Without an upstream, NAT64 has nowhere to send it.
		p.Routes = append(p.Routes, ra.Route{Prefix: st.Pref64.Masked(), Lifetime: ndPreferredLimit})
	}

	// RFC 8106 §5.1: the DNS service's RDNSS listening address. Without one
	// no RDNSS option is sent: advertising an address nothing answers on
	// would only add DNS timeouts.
	if a := n.DNS.RDNSS; a.IsValid() {
		p.RDNSS, p.RDNSSLifetime = []netip.Addr{a}, optionLifetime
	}
	// RFC 8781: hosts with a CLAT (RFC 6877) learn the NAT64 prefix here.
	if pref64 {
		p.Pref64, p.Pref64Lifetime = st.Pref64.Masked(), optionLifetime
	}
	return p
}

// hasUpstream reports whether the gizmo can forward LAN traffic out: its WAN
// is up and has an IPv6 default router whose lifetime has not run out, or a
// valid IPv4 lease that its NAT64 can use.
func hasUpstream(st *state.State, n Network, now time.Time) bool {
	w := st.WAN
	if !w.Up {
		return false
	}
	if w.Router.IsValid() && w.RouterLifetimeUntil.After(now) {
		return true
	}
	return n.IPv4 != nil && st.Pref64.IsValid()
}

// lanPrefixes are the PIOs: the LAN /64 of the delegation (or, without
// one, the upstream /64 the ND proxy shares), the ULA management /64, and
// the retired delegations being phased out.
func lanPrefixes(n Network) []ra.Prefix {
	var out []ra.Prefix
	seen := map[netip.Prefix]bool{}
	add := func(p ra.Prefix) {
		if seen[p.Prefix] {
			return
		}
		seen[p.Prefix] = true
		out = append(out, p)
	}
	// The current delegation first, so that a retired entry for the same
	// prefix (the ISP gave it back) can never deprecate it.
	if d := n.Delegated; d != nil {
		// RFC 9096 §3.4: PIO lifetimes are the smaller of ND_*_LIMIT and
		// what is left of the DHCPv6-PD lease; the ra service computes them
		// when each RA is sent.
		add(ra.Prefix{
			Prefix: d.LAN, OnLink: true, Autonomous: true,
			PreferredUntil: d.PreferredUntil, ValidUntil: d.ValidUntil,
			MaxPreferred: ndPreferredLimit, MaxValid: ndValidLimit,
		})
	}
	// Without a delegation, the upstream's /64 shared through the ND
	// proxy (RFC 7278 §4.3), off-link (sharedPIOs).
	for _, p := range sharedPIOs(n) {
		add(p)
	}
	if n.Management.IsValid() {
		// RFC 4193 §4.2: the ULA is stable, so it has no deadline; the
		// RFC 9096 limits still apply, so that a lost ULA (a wiped state
		// dir) leaves hosts within 90 minutes.
		add(ra.Prefix{
			Prefix: n.Management, OnLink: true, Autonomous: true,
			MaxPreferred: ndPreferredLimit, MaxValid: ndValidLimit,
		})
	}
	// RFC 9096 §3.5: a stale prefix is advertised with preferred lifetime
	// 0, so hosts stop using it for new connections at once, and a valid
	// lifetime that runs down to its deadline, so open connections last as
	// long as the old lease allows. Once that deadline has passed it is no
	// longer advertised (NetworkOf leaves it out).
	for _, r := range n.Retired {
		add(ra.Prefix{
			Prefix: r.LAN, OnLink: true, Autonomous: true,
			ValidUntil: r.ValidUntil, MaxPreferred: 0, MaxValid: ndValidLimit,
		})
	}
	return out
}
