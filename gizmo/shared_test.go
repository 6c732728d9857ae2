package main

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
)

// sharedWAN is the lab's no-PD WAN: an on-link /64 with the gizmo's SLAAC
// address in it.
func sharedWAN(now time.Time) state.WAN {
	return state.WAN{
		Up:    true,
		Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:102/64")},
		Prefixes: []state.UpstreamPrefix{{
			Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), OnLink: true, Autonomous: true,
			PreferredUntil: now.Add(4 * time.Hour), ValidUntil: now.Add(24 * time.Hour),
		}},
	}
}

func TestDeriveSharedHoldoff(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	st := &state.State{WAN: sharedWAN(t0)}
	deriveShared(st, false, t0)
	if st.Shared != nil {
		t.Fatalf("shared at once: %+v; a delegation on its way must get %v", st.Shared, plan.SharedHoldoff)
	}
	deriveShared(st, false, t0.Add(plan.SharedHoldoff-time.Second))
	if st.Shared != nil {
		t.Fatalf("shared before the hold-off ended")
	}
	// The delegation arrives within the hold-off: the /64 is never shared
	// and nothing is retired.
	pd := &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: t0.Add(time.Hour), ValidUntil: t0.Add(2 * time.Hour)}
	st.Delegated = pd
	deriveShared(st, false, t0.Add(plan.SharedHoldoff))
	if st.Shared != nil || st.SharedRetired != nil {
		t.Errorf("with a delegation: Shared %+v, SharedRetired %+v", st.Shared, st.SharedRetired)
	}

	// Without one, the candidate is shared after the hold-off.
	st = &state.State{WAN: sharedWAN(t0)}
	deriveShared(st, false, t0)
	deriveShared(st, false, t0.Add(plan.SharedHoldoff))
	if st.Shared == nil || st.Shared.Prefix != netip.MustParsePrefix("2001:db8:0:1::/64") {
		t.Fatalf("not shared after the hold-off: %+v", st.Shared)
	}
	if d := deploymentOf(st, false, t0.Add(plan.SharedHoldoff)); d != DeploymentShared64 {
		t.Errorf("deployment %q, want %q", d, DeploymentShared64)
	}
	// Existing-network mode never shares.
	ex := &state.State{WAN: sharedWAN(t0)}
	deriveShared(ex, true, t0)
	deriveShared(ex, true, t0.Add(time.Hour))
	if ex.Shared != nil {
		t.Errorf("existing-network mode shares %+v", ex.Shared)
	}
}

// RFC 9096 §3.5: when a delegation arrives after all, the shared /64 is
// retired: deprecated at once, valid at most ND_VALID_LIMIT longer.
func TestDeriveSharedRetired(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	st := &state.State{WAN: sharedWAN(t0)}
	deriveShared(st, false, t0)
	deriveShared(st, false, t0.Add(plan.SharedHoldoff))
	t1 := t0.Add(time.Minute)
	st.Delegated = &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: t1.Add(time.Hour), ValidUntil: t1.Add(2 * time.Hour)}
	deriveShared(st, false, t1)
	if st.Shared != nil {
		t.Fatalf("still shared with a delegation: %+v", st.Shared)
	}
	r := st.SharedRetired
	if r == nil || r.Prefix != netip.MustParsePrefix("2001:db8:0:1::/64") || !r.PreferredUntil.Equal(t1) || !r.ValidUntil.Equal(t1.Add(maxRetiredValid)) {
		t.Fatalf("SharedRetired = %+v, want the /64 deprecated at %v, valid until %v", r, t1, t1.Add(maxRetiredValid))
	}
	deriveShared(st, false, t1.Add(maxRetiredValid))
	if st.SharedRetired != nil {
		t.Errorf("SharedRetired kept past its deadline: %+v", st.SharedRetired)
	}
}
