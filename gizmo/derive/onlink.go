package derive

import (
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// OnLinkHoldoff is how long the existing-network mode waits for a
// delegation after its port came up before it falls back to the ULA for
// the on-link /64, for SharedHoldoff's reason: a delegation usually
// arrives within seconds, and starting with the ULA would hand the hosts
// a NAT64 prefix and a DNS64 address that change a moment later.
const OnLinkHoldoff = SharedHoldoff

// OnLinkPrefix is the /64 the existing-network mode announces on-link
// (State.OnLink), from the state at now. The rules:
//   - only in the existing-network mode: a router's LAN hosts reach the
//     NAT64 through their default route;
//   - a delegated prefix wins, its first /64 (state.LANPrefix): it is
//     global, so hosts prefer synthesized addresses in it like any global
//     destination (RFC 6724 §2.1), and the network's router routes the
//     delegation to the gizmo as well;
//   - else the ULA's /64 (state.OnLinkULA), once the port has been up
//     for OnLinkHoldoff, or at once when it is already the one in force;
//   - else none (yet).
func OnLinkPrefix(st *state.State, existingNetwork bool, now time.Time) netip.Prefix {
	if !existingNetwork {
		return netip.Prefix{}
	}
	if d := st.Delegated; d != nil && state.UsableDelegation(d.Prefix) && d.ValidUntil.After(now) {
		return state.LANPrefix(d.Prefix)
	}
	ula := state.OnLinkULA(st.ULA)
	if !ula.IsValid() {
		return netip.Prefix{}
	}
	up := st.WAN.LinkUpSince
	if st.OnLink == ula || (!up.IsZero() && now.Sub(up) >= OnLinkHoldoff) {
		return ula
	}
	return netip.Prefix{}
}

// deriveOnLink moves State.OnLink to OnLinkPrefix. The /64 it replaces is
// withdrawn: advertised with lifetime 0, which removes it from the hosts'
// prefix lists at once (RFC 4861 §6.3.4), for as long as any lifetime
// that was advertised for it can last (ND_VALID_LIMIT, RFC 9096 §3.4). A
// /64 that comes back is no longer withdrawn.
func deriveOnLink(st *state.State, existingNetwork bool, now time.Time) {
	next := OnLinkPrefix(st, existingNetwork, now)
	if old := st.OnLink; old.IsValid() && old != next {
		st.OnLinkWithdrawn = slices.DeleteFunc(st.OnLinkWithdrawn, func(w state.WithdrawnPrefix) bool { return w.Prefix == old })
		st.OnLinkWithdrawn = append(st.OnLinkWithdrawn, state.WithdrawnPrefix{Prefix: old, Until: now.Add(MaxRetiredValid)})
	}
	st.OnLink = next
	st.OnLinkWithdrawn = slices.DeleteFunc(st.OnLinkWithdrawn, func(w state.WithdrawnPrefix) bool {
		return w.Prefix == next || !w.Until.After(now)
	})
}
