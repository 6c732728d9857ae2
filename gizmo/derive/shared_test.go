package derive

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

var (
	t0    = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	wan64 = netip.MustParsePrefix("2001:db8:0:1::/64")
)

// sharedWAN is the lab's no-PD WAN: an on-link /64 with the gizmo's SLAAC
// address in it.
func sharedWAN(now time.Time) state.WAN {
	return state.WAN{
		Up:    true,
		Addrs: []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:102/64")},
		Prefixes: []state.UpstreamPrefix{{
			Prefix: wan64, OnLink: true, Autonomous: true,
			PreferredUntil: now.Add(4 * time.Hour), ValidUntil: now.Add(24 * time.Hour),
		}},
	}
}

func delegation(now time.Time) *state.DelegatedPrefix {
	return &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)}
}

func TestSharedCandidate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		change   func(st *state.State)
		existing bool
		want     bool
	}{
		{"RFC 7278 4.3: no delegation, an on-link /64 with a WAN address in it is shared", func(*state.State) {}, false, true},
		{"RFC 7278 4.3 is a fallback: a valid delegation wins", func(st *state.State) { st.Delegated = delegation(t0) }, false, false},
		{"an expired delegation is none: the /64 is shared", func(st *state.State) {
			st.Delegated = delegation(t0)
			st.Delegated.ValidUntil = t0
		}, false, true},
		{"existing-network mode: the network's router serves its /64 itself", func(*state.State) {}, true, false},
		{"WAN down: nothing to share", func(st *state.State) { st.WAN.Up = false }, false, false},
		{"RFC 4861 4.6.2: an off-link PIO (L=0) is not the WAN link's /64", func(st *state.State) { st.WAN.Prefixes[0].OnLink = false }, false, false},
		{"RFC 4862 5.5.3: a PIO without A gives the LAN no SLAAC", func(st *state.State) { st.WAN.Prefixes[0].Autonomous = false }, false, false},
		{"RFC 4862 5.5.3 d: only a /64 can be shared for SLAAC", func(st *state.State) {
			st.WAN.Prefixes[0].Prefix = netip.MustParsePrefix("2001:db8:0:1::/60")
		}, false, false},
		{"no WAN address in the /64: the upstream does not route it to us", func(st *state.State) {
			st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8:0:2::5/64")}
		}, false, false},
		{"a ULA /64 is not global addressing", func(st *state.State) {
			st.WAN.Prefixes[0].Prefix = netip.MustParsePrefix("fd00:1::/64")
			st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("fd00:1::5/64")}
		}, false, false},
		{"RFC 4861 6.3.4: a PIO past its valid lifetime is gone", func(st *state.State) { st.WAN.Prefixes[0].ValidUntil = t0 }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{WAN: sharedWAN(t0)}
			tc.change(st)
			p, ok := SharedCandidate(st, tc.existing, t0)
			if ok != tc.want {
				t.Fatalf("SharedCandidate ok = %v, want %v (%+v)", ok, tc.want, p)
			}
			if ok && p.Prefix != wan64 {
				t.Errorf("SharedCandidate = %v, want %v", p.Prefix, wan64)
			}
		})
	}
}

func TestDeriveSharedHoldoff(t *testing.T) {
	st := &state.State{WAN: sharedWAN(t0)}
	deriveShared(st, false, t0)
	if st.Shared != nil {
		t.Fatalf("shared at once: %+v; a delegation on its way must get %v", st.Shared, SharedHoldoff)
	}
	deriveShared(st, false, t0.Add(SharedHoldoff-time.Second))
	if st.Shared != nil {
		t.Fatalf("shared before the hold-off ended")
	}
	// The delegation arrives within the hold-off: the /64 is never shared
	// and nothing is retired.
	st.Delegated = delegation(t0)
	deriveShared(st, false, t0.Add(SharedHoldoff))
	if st.Shared != nil || st.SharedRetired != nil {
		t.Errorf("with a delegation: Shared %+v, SharedRetired %+v", st.Shared, st.SharedRetired)
	}

	// Without one, the candidate is shared after the hold-off.
	st = &state.State{WAN: sharedWAN(t0)}
	deriveShared(st, false, t0)
	deriveShared(st, false, t0.Add(SharedHoldoff))
	if st.Shared == nil || st.Shared.Prefix != wan64 {
		t.Fatalf("not shared after the hold-off: %+v", st.Shared)
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
	st := &state.State{WAN: sharedWAN(t0)}
	deriveShared(st, false, t0)
	deriveShared(st, false, t0.Add(SharedHoldoff))
	t1 := t0.Add(time.Minute)
	st.Delegated = delegation(t1)
	deriveShared(st, false, t1)
	if st.Shared != nil {
		t.Fatalf("still shared with a delegation: %+v", st.Shared)
	}
	r := st.SharedRetired
	if r == nil || r.Prefix != wan64 || !r.PreferredUntil.Equal(t1) || !r.ValidUntil.Equal(t1.Add(MaxRetiredValid)) {
		t.Fatalf("SharedRetired = %+v, want the /64 deprecated at %v, valid until %v", r, t1, t1.Add(MaxRetiredValid))
	}
	deriveShared(st, false, t1.Add(MaxRetiredValid))
	if st.SharedRetired != nil {
		t.Errorf("SharedRetired kept past its deadline: %+v", st.SharedRetired)
	}
}
