package derive

import (
	"net/netip"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// SharedHoldoff is how long a candidate must stand before the gizmo
// shares it. A DHCPv6-PD exchange takes a few seconds (RFC 8415 §18.2.1:
// the client collects Advertises for the first retransmission time, about
// 1 s, then Requests), and the WAN's SLAAC address usually comes first:
// sharing at once would hand the LAN an address in the WAN's /64 that
// stops working when the delegation arrives a moment later.
const SharedHoldoff = 10 * time.Second

// SharedCandidate is the upstream /64 the gizmo can share with its LAN
// when it has no delegated prefix (RFC 7278: a /64 on the WAN and no
// DHCPv6-PD, as behind another home router or on a mobile link). It is
// the first upstream PIO that is on-link and autonomous, is a global /64,
// is still valid, and in which the WAN holds an address of its own (so the
// upstream routes the /64 onto the WAN link, where the ND proxy answers
// for the LAN hosts). ok is false when there is nothing to share: a valid
// delegation, the existing-network mode (the network's own router serves
// its /64), or no such prefix.
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

// shareable: RFC 7278 §4.3 shares the 3GPP /64, an on-link prefix the
// upstream hands out for SLAAC; SLAAC on the LAN needs a /64 too
// (RFC 4862 §5.5.3 d). ULAs and link-local prefixes are not the upstream's
// global addressing.
func shareable(p state.UpstreamPrefix, now time.Time) bool {
	a := p.Prefix.Addr()
	return p.OnLink && p.Autonomous && p.Prefix.Bits() == 64 && a.Is6() && !a.Is4In6() &&
		a.IsGlobalUnicast() && !a.IsPrivate() && p.ValidUntil.After(now)
}

// deriveShared decides which upstream /64 the LAN shares through the ND
// proxy (RFC 7278 §4.3). A candidate (SharedCandidate) is shared once it
// has stood for SharedHoldoff without a delegation arriving. A /64 that
// stops being shared (a delegation arrived, the upstream renumbered or
// withdrew it) is retired like a replaced delegation: deprecated at once,
// valid until what the hosts were last told runs out, at most
// ND_VALID_LIMIT (RFC 9096 §3.3, §3.5).
func deriveShared(st *state.State, existingNetwork bool, now time.Time) {
	cand, ok := SharedCandidate(st, existingNetwork, now)
	switch {
	case !ok:
		st.SharedCandidate, st.SharedCandidateSince = netip.Prefix{}, time.Time{}
	case cand.Prefix.Masked() != st.SharedCandidate:
		st.SharedCandidate, st.SharedCandidateSince = cand.Prefix.Masked(), now
	}
	var next *state.UpstreamPrefix
	if ok && now.Sub(st.SharedCandidateSince) >= SharedHoldoff {
		c := cand
		c.Prefix = c.Prefix.Masked()
		next = &c
	}
	if old := st.Shared; old != nil && (next == nil || next.Prefix != old.Prefix) {
		r := *old
		r.PreferredUntil = now
		if r.ValidUntil.After(now.Add(MaxRetiredValid)) {
			r.ValidUntil = now.Add(MaxRetiredValid)
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
