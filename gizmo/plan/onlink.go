package plan

import (
	"net/netip"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/nsresponder"
	"codeberg.org/monostack/gizmo/services/ra"
)

// The existing-network mode reaches hosts that ignore Route Information
// Options (Linux by default) through an on-link /64 (State.OnLink, chosen
// by gizmo/derive): every host honours an on-link PIO from any RA,
// whatever its router lifetime (RFC 4861 §6.3.4), resolves addresses in
// it itself (§7.2.2) and sends to whoever answers, the gizmo. Its DNS64
// address and, unless -pref64 or the network's PREF64 names another, its
// NAT64 /96 live there.

// existingNetworkServes reports whether the gizmo's DNS64 is of use on
// the existing network at now: its NAT64 translates (a valid IPv4 lease),
// or the network's router runs one it names in its PREF64 (RFC 8781).
func existingNetworkServes(st *state.State, now time.Time) bool {
	return NAT64(st, true, now).Enabled() || st.Pref64Source.Upstream()
}

// existingNetworkRA fills the RA of the existing-network mode, where the
// gizmo is a guest: router lifetime 0 (RFC 4861 §6.3.4: not a default
// router), no PIO for SLAAC, no DNSSL, O=0 (the network's own DHCPv6
// answers, if any). It advertises:
//   - the on-link /64 as a PIO with L=1, A=0, whose lifetimes follow the
//     DNS64 and NAT64 being of use: what is left of 3 × MaxRtrAdvInterval
//     while they are, 0 when they stop (the IPv4 lease lost), so that
//     hosts drop the on-link route at once;
//   - the RDNSS address in it and the PREF64 (RFC 8106 §5.1, RFC 8781
//     §4), with the same lifetimes;
//   - RIOs for the ULA /48 (the dashboard) and for the NAT64 prefix, for
//     hosts that honour RFC 4191, and for a -pref64 prefix outside the
//     /64 the only way there; not for the network's own PREF64, which its
//     router translates;
//   - each withdrawn /64 with lifetime 0, its /96's RIO, DNS address and
//     PREF64 too;
//   - and everything with lifetime 0 in the final RA when the gizmo
//     stops (ra.Plan.WithdrawOnStop): nothing answers in the /64 then.
//
// Nothing of the NAT64 and DNS64 is advertised before the on-link /64 is
// chosen: a prefix that changes a few seconds later would leave hosts
// with stale synthesized addresses.
func existingNetworkRA(p *ra.Plan, st *state.State, n Network, optionLifetime time.Duration, now time.Time) {
	p.WithdrawOnStop = true
	if n.ULA.IsValid() {
		p.Routes = append(p.Routes, ra.Route{Prefix: n.ULA, Lifetime: ndPreferredLimit})
	}
	if st.OnLink.IsValid() {
		var lifetime, routeLifetime time.Duration
		if existingNetworkServes(st, now) {
			lifetime, routeLifetime = optionLifetime, ndPreferredLimit
		}
		p.Prefixes = append(p.Prefixes, ra.Prefix{
			Prefix: st.OnLink, OnLink: true,
			MaxPreferred: min(lifetime, ndValidLimit), MaxValid: min(lifetime, ndValidLimit),
		})
		if st.Pref64.IsValid() && !st.Pref64Source.Upstream() {
			p.Routes = append(p.Routes, ra.Route{Prefix: st.Pref64.Masked(), Lifetime: routeLifetime})
			p.Pref64, p.Pref64Lifetime = st.Pref64.Masked(), lifetime
		}
		if a := n.DNS.RDNSS; a.IsValid() {
			p.RDNSS, p.RDNSSLifetime = []netip.Addr{a}, lifetime
		}
	}
	for _, w := range st.OnLinkWithdrawn {
		if !w.Until.After(now) {
			continue
		}
		old := state.NAT64In(w.Prefix)
		p.Prefixes = append(p.Prefixes, ra.Prefix{Prefix: w.Prefix, OnLink: true})
		p.Routes = append(p.Routes, ra.Route{Prefix: old})
		p.RDNSSWithdrawn = append(p.RDNSSWithdrawn, state.OnLinkDNS(w.Prefix))
		p.Pref64Withdrawn = append(p.Pref64Withdrawn, old)
	}
}

// NSResponder is the Neighbor Solicitation responder's plan: in the
// existing-network mode, while the NAT64 translates, every address of its
// prefix when that lies in the on-link /64 (a -pref64 prefix elsewhere is
// reached by RIO only). The gizmo's own address there, the DNS64's, is on
// its port, where the kernel answers for it.
func NSResponder(st *state.State, existingNetwork bool, now time.Time) nsresponder.Plan {
	if !existingNetwork || !st.OnLink.IsValid() || !NAT64(st, true, now).Enabled() {
		return nsresponder.Plan{}
	}
	p := st.Pref64.Masked()
	if !p.IsValid() || p.Bits() < st.OnLink.Bits() || !st.OnLink.Contains(p.Addr()) {
		return nsresponder.Plan{}
	}
	return nsresponder.Plan{Prefixes: []netip.Prefix{p}, Router: true}
}
