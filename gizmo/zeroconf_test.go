package main

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/lanif"
)

func TestDeploymentOf(t *testing.T) {
	now := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	router := func(w *state.WAN) {
		w.Router, w.RouterLifetimeUntil = netip.MustParseAddr("fe80::1"), later
	}
	v4 := func(w *state.WAN) {
		w.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: later}
	}
	pd := &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), PreferredUntil: later, ValidUntil: later}
	for _, tc := range []struct {
		name     string
		wan      func(*state.WAN)
		pd       *state.DelegatedPrefix
		source   state.Pref64Source
		existing bool
		want     Deployment
	}{
		{"RFC 8415: a delegation makes the gizmo a router", router, pd, state.Pref64Flag, false, DeploymentRouter},
		{"RFC 8781: an upstream PREF64 means the upstream translates", router, pd, state.Pref64Upstream, false, DeploymentUpstreamNAT64},
		{"RFC 7278 situation: IPv6 upstream without delegation", router, nil, state.Pref64Default, false, DeploymentNoDelegation},
		{"a global /64 on the WAN without a router still counts as IPv6", func(w *state.WAN) {
			w.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::5/64")}
		}, nil, state.Pref64Default, false, DeploymentNoDelegation},
		{"RFC 7278 4.3: an on-link /64 with a WAN address in it is shared", func(w *state.WAN) {
			router(w)
			w.Up = true
			w.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::5/64")}
			w.Prefixes = []state.UpstreamPrefix{{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), OnLink: true, Autonomous: true, PreferredUntil: later, ValidUntil: later}}
		}, nil, state.Pref64Default, false, DeploymentShared64},
		{"a ULA on the WAN is not an IPv6 upstream", func(w *state.WAN) {
			w.Addrs = []netip.Prefix{netip.MustParsePrefix("fd00::5/64")}
			v4(w)
		}, nil, state.Pref64Default, false, DeploymentIPv4OnlyUpstream},
		{"only an IPv4 lease: IPv4-only upstream", v4, nil, state.Pref64Default, false, DeploymentIPv4OnlyUpstream},
		{"an expired router lifetime is no upstream", func(w *state.WAN) {
			w.Router, w.RouterLifetimeUntil = netip.MustParseAddr("fe80::1"), now
		}, nil, state.Pref64Default, false, DeploymentNoUpstream},
		{"existing-network mode wins", router, pd, state.Pref64Upstream, true, DeploymentExistingNetwork},
		{"an expired delegation is none", router, &state.DelegatedPrefix{Prefix: pd.Prefix, ValidUntil: now}, state.Pref64Default, false, DeploymentNoDelegation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{Delegated: tc.pd, Pref64Source: tc.source}
			tc.wan(&st.WAN)
			// The shared /64 is derived after the hold-off.
			deriveShared(st, tc.existing, now.Add(-plan.SharedHoldoff))
			deriveShared(st, tc.existing, now)
			if got := deploymentOf(st, tc.existing, now); got != tc.want {
				t.Errorf("deploymentOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExistingNetworkLANKeepsUpstreamAddrs(t *testing.T) {
	now := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	ula := netip.MustParsePrefix("fd00:1:2::1/64")
	slaac := netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:201/64")
	st := &state.State{
		Delegated: &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), ValidUntil: later},
		WAN: state.WAN{
			Addrs: []netip.Prefix{slaac, ula, netip.MustParsePrefix("2001:db8:1000::1/64")},
			IPv4:  &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.101/24"), Expires: later},
		},
	}
	in := lanif.Plan{Addrs: []lanif.Addr{{Prefix: ula}, {Prefix: netip.MustParsePrefix("2001:db8:1000::1/64"), ValidUntil: later}}}
	got := existingNetworkLAN(in, st, now)
	want := []netip.Prefix{ula, slaac, netip.MustParsePrefix("192.0.2.101/24")}
	var have []netip.Prefix
	for _, a := range got.Addrs {
		have = append(have, a.Prefix)
	}
	if !slices.Equal(have, want) {
		t.Errorf("existing-network LAN plan %v, want %v (upstream addresses kept, the delegation's dropped)", have, want)
	}
}

func TestExistingNetworkPrefixes(t *testing.T) {
	st := &state.State{
		Delegated: &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56")},
		WAN: state.WAN{Addrs: []netip.Prefix{
			netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:201/64"),
			netip.MustParsePrefix("2001:db8:0:1::99/64"),
			netip.MustParsePrefix("fd00:1:2::1/64"),
			netip.MustParsePrefix("2001:db8:1000::1/64"),
		}},
	}
	got := existingNetworkPrefixes(st)
	if want := []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::/64")}; !slices.Equal(got, want) {
		t.Errorf("existingNetworkPrefixes = %v, want %v (the network's /64 once; no ULA, no delegation)", got, want)
	}
}
