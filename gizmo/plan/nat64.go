package plan

import (
	"net/netip"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/special4"
	"codeberg.org/monostack/gizmo/services/nat64"
)

// NAT64MaxSessionsPerHost bounds what one LAN address can hold in the
// NAT64, so that one host opening flows as fast as it can cannot take the
// table from the others.
const NAT64MaxSessionsPerHost = 8192

// neverTranslated4 holds no matter the prefix: multicast and broadcast have
// no stateful translation (RFC 6146 §3: unicast only), and loopback
// destinations would reach the gizmo itself.
var neverTranslated4 = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
}

// NAT64 is the NAT64 plan: the WAN's IPv4 lease is the pool, the active
// PREF64 the prefix, and the LAN's /64s (delegated, retired but still
// valid, and the ULA) the allowed sources. Without an IPv4 lease there is
// nothing to translate to, and the plan is off. lanIfindex and wanIfindex
// are the daemon's lan0 and uplink0.
func NAT64(st *state.State, now time.Time, lanIfindex, wanIfindex int) nat64.Plan {
	var p nat64.Plan
	if !st.WAN.Up || st.WAN.IPv4 == nil || !st.WAN.IPv4.Addr.Addr().Is4() {
		return p
	}
	if !st.WAN.IPv4.Expires.IsZero() && !now.Before(st.WAN.IPv4.Expires) {
		return p
	}
	p.Pool4 = st.WAN.IPv4.Addr.Addr()
	p.Pref64 = st.Pref64
	if !p.Pref64.IsValid() {
		p.Pref64 = state.WellKnownPref64
	}
	if st.Delegated != nil {
		p.LANPrefixes = append(p.LANPrefixes, LANPrefix(st.Delegated.Prefix))
	}
	// The upstream /64 shared through the ND proxy: its LAN hosts prefer
	// that global source for NAT64 destinations too (RFC 6724 §5 rule 6).
	p.LANPrefixes = append(p.LANPrefixes, sharedLANPrefixes(st, now)...)
	for _, r := range st.Retired {
		// RFC 9096 §3: hosts keep using a retired prefix until its
		// valid lifetime ends.
		if _, valid := r.Remaining(now); valid > 0 {
			p.LANPrefixes = append(p.LANPrefixes, LANPrefix(r.Prefix))
		}
	}
	if st.ULA.IsValid() {
		p.LANPrefixes = append(p.LANPrefixes, ManagementPrefix(st.ULA))
		p.Router6 = RouterULA(st.ULA)
	} else if st.LAN.LinkLocal.IsValid() {
		p.Router6 = st.LAN.LinkLocal
	}

	p.Deny4 = append(p.Deny4, neverTranslated4...)
	if p.Pref64.Masked() == state.WellKnownPref64 {
		p.Deny4 = append(p.Deny4, special4.NonGlobal()...)
	}
	// The gizmo's own legacy LAN is reached directly, never through the
	// translator (it would come back through the NAT44).
	if st.LAN.Legacy4.IsValid() {
		p.Deny4 = append(p.Deny4, st.LAN.Legacy4.Masked())
	}

	p.LANIfindex, p.WANIfindex = lanIfindex, wanIfindex
	p.LANMTU, p.WANMTU = st.LAN.MTU, st.WAN.MTU
	// The kernel keeps 32768-65535 of the WAN address: its own ephemeral
	// ports and the NAT44 masquerade for legacy hosts.
	p.PortsLow, p.PortsHigh = nat64.DefaultPortsLow, nat64.DefaultPortsHigh
	p.MaxSessionsPerHost = NAT64MaxSessionsPerHost
	return p
}
