package plan

import (
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/wan"
)

// WAN is the uplink's plan: an unreachable route for each delegated prefix
// that is still valid, the current one and the retired ones, so that
// packets to unused parts of a delegation are answered with an ICMP error
// instead of looping between the gizmo and the ISP (RFC 7084 WPD-5).
func WAN(st *state.State, now time.Time) wan.Plan {
	return wan.Plan{Delegated: NetworkOf(st, now).Delegations()}
}
