package plan

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/special4"
	"codeberg.org/monostack/gizmo/services/dslite"
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

// NAT64 is the NAT64 plan: the WAN's IPv4 lease is the WAN pool (on a
// DS-Lite line the softwire's 192.0.0.2, whose packets the B4 carries to
// the AFTR within the softwire's MTU), the active PREF64 its prefix, and
// the LAN's /64s (delegated, shared, retired but still valid, and the ULA)
// the allowed sources; in the existing-network mode the /64s of the network
// the gizmo joined and the ULA, not the delegation (its first /64 is the
// on-link one, where no host lives). There is no WAN pool without a valid
// IPv4 lease or softwire or with the WAN down, nor when the PREF64 is the
// upstream's: RFC 8781, an upstream that advertises its own PREF64 (or
// whose DNS64 synthesizes into one, RFC 7050) runs the NAT64, and the gizmo
// only passes its prefix on. The LAN pool (LANLegacy) works with or without
// it; in the existing-network mode, whose one port is no LAN of the
// gizmo's, there is none. The plan is off (zero) with neither pool.
func NAT64(st *state.State, existingNetwork bool, now time.Time) nat64.Plan {
	var p nat64.Plan
	n := NetworkOf(st, now)
	if !existingNetwork {
		p.LANLegacy = LANLegacy(st, now)
	}
	wan := st.WAN.Up && (n.IPv4 != nil || n.DSLite != nil) && !st.Pref64Source.Upstream()
	if !wan && !p.LANLegacy.Enabled() {
		return nat64.Plan{}
	}
	wanMTU := st.WAN.MTU
	if wan {
		if n.IPv4 != nil {
			p.Pool4 = n.IPv4.Addr.Addr()
		} else {
			p.Pool4 = n.DSLite.IPv4()
			// The translated IPv4 leaves through the softwire: its MTU
			// is the WAN's less the outer header, which the NAT64's
			// Packet Too Big and MSS clamp must know.
			wanMTU = dslite.Softwire{MTU: st.WAN.MTU}.MTU4()
			// The softwire's own /29 is no destination (RFC 6333 §5.7).
			p.Deny4 = append(p.Deny4, dslite.Prefix4)
		}
		p.Pref64 = st.Pref64
		if !p.Pref64.IsValid() {
			p.Pref64 = state.WellKnownPref64
		}
	}
	// On an existing network a delegation's /64 is the on-link /64, where
	// no host has an address: not a source.
	if n.Delegated != nil && !existingNetwork {
		p.LANPrefixes = append(p.LANPrefixes, n.Delegated.LAN)
	}
	// The upstream /64 shared through the ND proxy: its LAN hosts prefer
	// that global source for NAT64 destinations too (RFC 6724 §5 rule 6).
	p.LANPrefixes = append(p.LANPrefixes, n.SharedLANs()...)
	// RFC 9096 §3: hosts keep using a retired prefix until its valid
	// lifetime ends.
	for _, r := range n.Retired {
		if !existingNetwork {
			p.LANPrefixes = append(p.LANPrefixes, r.LAN)
		}
	}
	if n.Management.IsValid() {
		p.LANPrefixes = append(p.LANPrefixes, n.Management)
		p.Router6 = n.RouterULA
	} else if st.LAN.LinkLocal.IsValid() {
		p.Router6 = st.LAN.LinkLocal
	}
	if existingNetwork {
		// The network's /64 may be in the plan already (as a shared
		// prefix); each prefix once.
		for _, q := range ExistingNetworkPrefixes(st, now) {
			if !slices.Contains(p.LANPrefixes, q) {
				p.LANPrefixes = append(p.LANPrefixes, q)
			}
		}
	}

	p.Deny4 = append(p.Deny4, neverTranslated4...)
	if p.Pref64.Masked() == state.WellKnownPref64 {
		p.Deny4 = append(p.Deny4, special4.NonGlobal()...)
	}
	// The gizmo's own legacy LAN is never reached through the WAN pool (it
	// would come back through the NAT44); the LAN pool reaches it.
	if n.Legacy4.IsValid() {
		p.Deny4 = append(p.Deny4, n.Legacy4.Masked())
	}

	p.LANIfindex, p.WANIfindex = st.LAN.Ifindex, st.WAN.Ifindex
	p.LANMTU, p.WANMTU = st.LAN.MTU, wanMTU
	// The kernel keeps 32768-65535 of the WAN address: its own ephemeral
	// ports and the NAT44 masquerade for legacy hosts.
	p.PortsLow, p.PortsHigh = nat64.DefaultPortsLow, nat64.DefaultPortsHigh
	p.MaxSessionsPerHost = NAT64MaxSessionsPerHost
	return p
}
