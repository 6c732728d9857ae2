package main

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
)

// hostAddrTTL is how long an address seen for a host is remembered after it
// was last seen: a day covers the RFC 8981 temporary address lifetimes.
const hostAddrTTL = 24 * time.Hour

// derive fills the state fields that follow from the others and from the
// flags, and ages out what has expired. It is pure apart from st.
func derive(st *state.State, cfg config, now time.Time) {
	// PREF64: the flag, else what the upstream advertises (RFC 8781), else
	// the well-known prefix (RFC 6052 §2.1).
	switch {
	case cfg.Pref64Set:
		st.Pref64, st.Pref64Source = cfg.Pref64, state.Pref64Flag
	case st.WAN.UpstreamPref64.IsValid():
		st.Pref64, st.Pref64Source = st.WAN.UpstreamPref64, state.Pref64Upstream
	default:
		st.Pref64, st.Pref64Source = state.WellKnownPref64, state.Pref64Default
	}

	// Upstream DNS: the flag overrides discovery; otherwise RA RDNSS, then
	// DHCPv6, then the DHCPv4 lease's servers, without duplicates.
	if len(cfg.DNSUpstream) > 0 {
		st.UpstreamDNS = slices.Clone(cfg.DNSUpstream)
	} else {
		var ups []netip.AddrPort
		add := func(as []netip.Addr) {
			for _, a := range as {
				ap := netip.AddrPortFrom(a, 53)
				if a.IsValid() && !slices.Contains(ups, ap) {
					ups = append(ups, ap)
				}
			}
		}
		add(st.WAN.RDNSS)
		add(st.WAN.DHCPv6DNS)
		if st.WAN.IPv4 != nil {
			add(st.WAN.IPv4.DNS)
		}
		st.UpstreamDNS = ups
	}

	st.LAN.Legacy4 = legacyNetwork(cfg, st.WAN.IPv4)
	if st.ULA.IsValid() {
		st.LAN.DNS = plan.DNSAddrs(st.ULA, st.LAN.Legacy4)
	}

	// A delegation past its valid lifetime is gone (RFC 8415 §18.2.10.1).
	if st.Delegated != nil && !st.Delegated.ValidUntil.After(now) {
		st.Delegated = nil
	}
	st.Retired = slices.DeleteFunc(st.Retired, func(r state.DelegatedPrefix) bool {
		return !r.ValidUntil.After(now)
	})

	deriveShared(st, cfg.ExistingNetwork, now)
	st.Deployment = string(deploymentOf(st, cfg.ExistingNetwork, now))

	for _, h := range st.Hosts {
		for a, seen := range h.Addrs {
			if now.Sub(seen) > hostAddrTTL {
				delete(h.Addrs, a)
			}
		}
	}
}

// newDelegation records a (possibly changed) delegated prefix. A different
// prefix retires the old one: it stays advertised as deprecated until its
// valid lifetime runs out, capped at ND_VALID_LIMIT (RFC 9096 §3.3), while
// hosts get the new one at once.
func newDelegation(st *state.State, d state.DelegatedPrefix, now time.Time) {
	old := st.Delegated
	st.Delegated = &d
	// Coming back to a retired prefix takes it out of retirement.
	st.Retired = slices.DeleteFunc(st.Retired, func(r state.DelegatedPrefix) bool { return r.Prefix == d.Prefix })
	if old != nil && old.Prefix != d.Prefix {
		retireLocked(st, *old, now)
	}
}

// lostDelegation records that the delegated prefix went away (withdrawn or
// expired): it is retired like a replaced one.
func lostDelegation(st *state.State, now time.Time) {
	if st.Delegated == nil {
		return
	}
	retireLocked(st, *st.Delegated, now)
	st.Delegated = nil
}

// maxRetiredValid bounds how long a retired prefix stays valid on the LAN:
// ND_VALID_LIMIT, 5400 s (RFC 9096 §3.3).
const maxRetiredValid = 5400 * time.Second

func retireLocked(st *state.State, old state.DelegatedPrefix, now time.Time) {
	old.PreferredUntil = now
	if old.ValidUntil.After(now.Add(maxRetiredValid)) {
		old.ValidUntil = now.Add(maxRetiredValid)
	}
	st.Retired = slices.DeleteFunc(st.Retired, func(r state.DelegatedPrefix) bool { return r.Prefix == old.Prefix })
	if old.ValidUntil.After(now) {
		st.Retired = append(st.Retired, old)
	}
}

// legacyFallbacks are the private networks the legacy LAN moves to, in
// order, when the default one overlaps the WAN's subnet (the gizmo behind
// another home router that uses 192.168.64.0/24 itself).
var legacyFallbacks = []netip.Prefix{
	netip.MustParsePrefix("192.168.64.1/24"),
	netip.MustParsePrefix("10.64.64.1/24"),
	netip.MustParsePrefix("172.30.64.1/24"),
}

// legacyNetwork is the LAN's legacy IPv4 network: the flag's, or the first
// default that does not overlap the WAN's subnet, so that the route to the
// legacy LAN never hides the upstream.
func legacyNetwork(cfg config, wan *state.IPv4Lease) netip.Prefix {
	if cfg.LANIPv4Set || wan == nil || !wan.Addr.IsValid() {
		return cfg.LANIPv4
	}
	candidates := append([]netip.Prefix{cfg.LANIPv4}, legacyFallbacks...)
	for _, c := range candidates {
		if !c.Masked().Overlaps(wan.Addr.Masked()) {
			return c
		}
	}
	return cfg.LANIPv4
}

// deriveShared decides which upstream /64 the LAN shares through the ND
// proxy (RFC 7278 §4.3). A candidate (plan.SharedCandidate) is shared once
// it has stood for plan.SharedHoldoff without a delegation arriving. A /64
// that stops being shared (a delegation arrived, the upstream renumbered or
// withdrew it) is retired like a replaced delegation: deprecated at once,
// valid until what the hosts were last told runs out, at most
// ND_VALID_LIMIT (RFC 9096 §3.3, §3.5).
func deriveShared(st *state.State, existingNetwork bool, now time.Time) {
	cand, ok := plan.SharedCandidate(st, existingNetwork, now)
	switch {
	case !ok:
		st.SharedCandidate, st.SharedCandidateSince = netip.Prefix{}, time.Time{}
	case cand.Prefix.Masked() != st.SharedCandidate:
		st.SharedCandidate, st.SharedCandidateSince = cand.Prefix.Masked(), now
	}
	var next *state.UpstreamPrefix
	if ok && now.Sub(st.SharedCandidateSince) >= plan.SharedHoldoff {
		c := cand
		c.Prefix = c.Prefix.Masked()
		next = &c
	}
	if old := st.Shared; old != nil && (next == nil || next.Prefix != old.Prefix) {
		r := *old
		r.PreferredUntil = now
		if r.ValidUntil.After(now.Add(maxRetiredValid)) {
			r.ValidUntil = now.Add(maxRetiredValid)
		}
		if r.ValidUntil.After(now) {
			st.SharedRetired = &r
		}
	}
	st.Shared = next
	if r := st.SharedRetired; r != nil && (!r.ValidUntil.After(now) || (next != nil && next.Prefix == r.Prefix)) {
		st.SharedRetired = nil
	}
}
