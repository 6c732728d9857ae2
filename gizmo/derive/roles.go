package derive

import (
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// ProveWAN records the WAN in force as proven (st.Roles.Proven) once it has
// carried a delegation or a DHCPv4 lease that a server granted or confirmed
// after the roles took effect (st.Roles.Since): a lease kept on disk from
// an earlier run proves nothing about the port it is on now, and a rogue
// port that took the role on the strength of its own RA has not carried
// the ISP's lease. It then sets st.Roles.Pinned: the WAN in force is the
// proven one, and only the owner or a reboot with that port unplugged
// moves the role (services/roles). It reports whether Proven changed, a
// persisted field.
func ProveWAN(st *state.State, now time.Time) bool {
	r := &st.Roles
	changed := false
	if r.WANMAC != "" && r.Proven.MAC != r.WANMAC {
		by := ""
		switch {
		case st.Delegated != nil && st.Delegated.ValidUntil.After(now) && carriedSince(st.Delegated.Acquired, r.Since):
			by = state.ProvenByDelegation
		case st.WAN.IPv4 != nil && (st.WAN.IPv4.Expires.IsZero() || st.WAN.IPv4.Expires.After(now)) && carriedSince(st.WAN.IPv4.Acquired, r.Since):
			by = state.ProvenByDHCPv4
		}
		if by != "" {
			r.Proven, changed = state.ProvenWAN{MAC: r.WANMAC, At: now, By: by}, true
		}
	}
	r.Pinned = r.WANMAC != "" && r.Proven.MAC == r.WANMAC
	return changed
}

// carriedSince: a server granted or confirmed the lease at acquired, not
// before the roles took effect at since.
func carriedSince(acquired, since time.Time) bool {
	return !acquired.IsZero() && !acquired.Before(since)
}
