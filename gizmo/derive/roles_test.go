package derive

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func TestProveWAN(t *testing.T) {
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	since := now.Add(-time.Minute)
	wanMAC, otherMAC := "02:00:00:00:01:02", "02:00:00:00:02:01"
	delegation := func(acquired time.Time) *state.DelegatedPrefix {
		return &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), ValidUntil: now.Add(time.Hour), Acquired: acquired}
	}
	lease := func(acquired, expires time.Time) *state.IPv4Lease {
		return &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: expires, Acquired: acquired}
	}
	for _, tc := range []struct {
		name      string
		st        state.State
		wantBy    string // "" for no new proof
		wantPin   bool
		wantProof string // Proven.MAC after
	}{
		{"a delegation granted since the roles took effect proves the WAN",
			state.State{Roles: state.RolesStatus{WANMAC: wanMAC, Since: since}, Delegated: delegation(now)},
			state.ProvenByDelegation, true, wanMAC},
		{"a DHCPv4 lease granted since the roles took effect proves the WAN",
			state.State{Roles: state.RolesStatus{WANMAC: wanMAC, Since: since}, WAN: state.WAN{IPv4: lease(now, now.Add(time.Hour))}},
			state.ProvenByDHCPv4, true, wanMAC},
		{"a delegation kept from an earlier run proves nothing about this port",
			state.State{Roles: state.RolesStatus{WANMAC: wanMAC, Since: since}, Delegated: delegation(since.Add(-time.Hour))},
			"", false, ""},
		{"a stored DHCPv4 lease no server confirmed proves nothing",
			state.State{Roles: state.RolesStatus{WANMAC: wanMAC, Since: since}, WAN: state.WAN{IPv4: lease(since.Add(-time.Hour), now.Add(time.Hour))}},
			"", false, ""},
		{"an expired DHCPv4 lease proves nothing",
			state.State{Roles: state.RolesStatus{WANMAC: wanMAC, Since: since}, WAN: state.WAN{IPv4: lease(now.Add(-time.Second), now)}},
			"", false, ""},
		{"roles given by -wan/-lan (no WAN MAC) are never pinned",
			state.State{Delegated: delegation(now)},
			"", false, ""},
		{"the proven WAN of an earlier run, in force again, is pinned at once",
			state.State{Roles: state.RolesStatus{WANMAC: wanMAC, Since: since, Proven: state.ProvenWAN{MAC: wanMAC, By: state.ProvenByDelegation}}},
			"", true, wanMAC},
		{"another port proven earlier: this WAN is not pinned until it carries a lease",
			state.State{Roles: state.RolesStatus{WANMAC: wanMAC, Since: since, Proven: state.ProvenWAN{MAC: otherMAC, By: state.ProvenByDelegation}}},
			"", false, otherMAC},
		{"another port proven earlier: a lease here moves the proof",
			state.State{Roles: state.RolesStatus{WANMAC: wanMAC, Since: since, Proven: state.ProvenWAN{MAC: otherMAC, By: state.ProvenByOwner}}, Delegated: delegation(now)},
			state.ProvenByDelegation, true, wanMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			changed := ProveWAN(&st, now)
			if changed != (tc.wantBy != "") || (changed && st.Roles.Proven.By != tc.wantBy) {
				t.Errorf("changed %v, proven %+v; want a new proof by %q", changed, st.Roles.Proven, tc.wantBy)
			}
			if st.Roles.Pinned != tc.wantPin || st.Roles.Proven.MAC != tc.wantProof {
				t.Errorf("pinned %v, proven %q; want %v, %q", st.Roles.Pinned, st.Roles.Proven.MAC, tc.wantPin, tc.wantProof)
			}
		})
	}
}
