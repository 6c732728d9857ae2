package plan

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/edit"
)

func TestDeploymentOf(t *testing.T) {
	now := netNow
	later := now.Add(time.Hour)
	router := func(st *state.State) {
		st.WAN.Router, st.WAN.RouterLifetimeUntil = netip.MustParseAddr("fe80::1"), later
	}
	v4 := func(st *state.State) {
		st.WAN.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: later}
	}
	pd := func(st *state.State) {
		st.Delegated = &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), PreferredUntil: later, ValidUntil: later}
	}
	upstreamPref64 := func(st *state.State) { st.Pref64Source = state.Pref64Upstream }
	all := edit.All[state.State]
	for _, tc := range []modeCase[Deployment]{
		{"RFC 8415: a delegation makes the gizmo a router", all(router, pd), false, DeploymentRouter},
		{"RFC 8781: an upstream PREF64 means the upstream translates", all(router, pd, upstreamPref64), false, DeploymentUpstreamNAT64},
		{"RFC 7050: a prefix the ISP's DNS64 synthesizes into means the upstream translates", all(router, pd, func(st *state.State) { st.Pref64Source = state.Pref64Discovered }), false, DeploymentUpstreamNAT64},
		{"RFC 7278 situation: IPv6 upstream without delegation", router, false, DeploymentNoDelegation},
		{"a global /64 on the WAN without a router still counts as IPv6", func(st *state.State) {
			st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::5/64")}
		}, false, DeploymentNoDelegation},
		{"RFC 7278 4.3: a shared /64 makes the shared-64 deployment", all(router, func(st *state.State) {
			st.Shared = &state.UpstreamPrefix{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), OnLink: true, Autonomous: true, PreferredUntil: later, ValidUntil: later}
		}), false, DeploymentShared64},
		{"a shared /64 past its ValidUntil is none", all(router, func(st *state.State) {
			st.Shared = &state.UpstreamPrefix{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), ValidUntil: now}
		}), false, DeploymentNoDelegation},
		{"a ULA on the WAN is not an IPv6 upstream", all(v4, func(st *state.State) {
			st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("fd00::5/64")}
		}), false, DeploymentIPv4OnlyUpstream},
		{"only an IPv4 lease: IPv4-only upstream", v4, false, DeploymentIPv4OnlyUpstream},
		{"an expired IPv4 lease is no upstream", all(v4, func(st *state.State) { st.WAN.IPv4.Expires = now }), false, DeploymentNoUpstream},
		{"an expired router lifetime is no upstream", func(st *state.State) {
			st.WAN.Router, st.WAN.RouterLifetimeUntil = netip.MustParseAddr("fe80::1"), now
		}, false, DeploymentNoUpstream},
		{"existing-network mode wins", all(router, pd, upstreamPref64), true, DeploymentExistingNetwork},
		{"an expired delegation is none", all(router, pd, func(st *state.State) { st.Delegated.ValidUntil = now }), false, DeploymentNoDelegation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{Pref64Source: state.Pref64Default}
			tc.edit(st)
			if got := DeploymentOf(st, tc.existing, now); got != tc.want {
				t.Errorf("DeploymentOf = %q, want %q", got, tc.want)
			}
		})
	}
}
