package main

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/wan"
	"github.com/google/go-cmp/cmp"
)

func TestWANObserved(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	u := wan.Upstream{
		Interface: "uplink0", Up: true, MTU: 1500,
		Addrs:  []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::5/64")},
		Router: netip.MustParseAddr("fe80::1"), RouterLifetimeUntil: t0.Add(time.Hour),
		RDNSS:  []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")},
		Pref64: netip.MustParsePrefix("2001:db8:64::/96"),
		Routes: []wan.Route{{Prefix: netip.MustParsePrefix("2001:db8:ffff::/48"), Preference: 1, ValidUntil: t0.Add(time.Hour)}},
		Prefixes: []wan.Prefix{{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), OnLink: true, Autonomous: true,
			PreferredUntil: t0.Add(time.Minute), ValidUntil: t0.Add(time.Hour)}},
	}
	w := state.WAN{DHCPv6DNS: []netip.Addr{netip.MustParseAddr("2001:db8::35")}}
	wanObserved(&w, u, t0)
	want := state.WAN{
		Interface: "uplink0", Up: true, LinkUpSince: t0, MTU: 1500,
		Addrs: u.Addrs, Router: u.Router, RouterLifetimeUntil: u.RouterLifetimeUntil, RDNSS: u.RDNSS,
		DHCPv6DNS:      []netip.Addr{netip.MustParseAddr("2001:db8::35")}, // another source's, kept
		UpstreamPref64: u.Pref64,
		Routes:         []state.Route{{Prefix: netip.MustParsePrefix("2001:db8:ffff::/48"), Preference: 1, ValidUntil: t0.Add(time.Hour)}},
		Prefixes: []state.UpstreamPrefix{{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), OnLink: true, Autonomous: true,
			PreferredUntil: t0.Add(time.Minute), ValidUntil: t0.Add(time.Hour)}},
	}
	cmpOpts := []cmp.Option{cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })}
	if d := cmp.Diff(want, w, cmpOpts...); d != "" {
		t.Errorf("WAN state (-want +got):\n%s", d)
	}
	// Staying up keeps the moment the link came up; down clears it; up
	// again is a new moment (RFC 8415 §18.2.12: confirm after each).
	wanObserved(&w, u, t0.Add(time.Minute))
	if !w.LinkUpSince.Equal(t0) {
		t.Errorf("LinkUpSince moved while the link stayed up: %v", w.LinkUpSince)
	}
	u.Up = false
	wanObserved(&w, u, t0.Add(2*time.Minute))
	if !w.LinkUpSince.IsZero() {
		t.Errorf("LinkUpSince %v while down", w.LinkUpSince)
	}
	u.Up = true
	wanObserved(&w, u, t0.Add(3*time.Minute))
	if !w.LinkUpSince.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("LinkUpSince %v after the link came back", w.LinkUpSince)
	}
}
