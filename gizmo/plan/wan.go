package plan

import (
	"net/netip"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/wan"
)

// WAN is the uplink's plan: an unreachable route for each delegated prefix
// that is still valid, the current one and the retired ones, so that
// packets to unused parts of a delegation are answered with an ICMP error
// instead of looping between the gizmo and the ISP (RFC 7084 WPD-5).
func WAN(st *state.State, now time.Time) wan.Plan {
	var p wan.Plan
	add := func(pfx netip.Prefix) {
		for _, q := range p.Delegated {
			if q == pfx {
				return
			}
		}
		p.Delegated = append(p.Delegated, pfx)
	}
	if st.Delegated != nil && st.Delegated.ValidUntil.After(now) {
		add(st.Delegated.Prefix)
	}
	for _, r := range st.Retired {
		if r.ValidUntil.After(now) {
			add(r.Prefix)
		}
	}
	return p
}
