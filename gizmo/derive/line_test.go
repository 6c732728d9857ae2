package derive

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/edit"
)

func TestLineOf(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	longUp := now.Add(-NoIPv4HoldOff - time.Second)
	nsp := netip.MustParsePrefix("2001:db8:46::/96")
	resolver := []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:0:1::53]:53")}
	v6 := func(st *state.State) {
		st.WAN.Up, st.WAN.LinkUpSince = true, longUp
		st.WAN.Router, st.WAN.RouterLifetimeUntil = netip.MustParseAddr("fe80::1"), later
		st.UpstreamDNS = resolver
	}
	v4 := func(st *state.State) {
		st.WAN.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: later}
	}
	noDNS64 := func(st *state.State) { st.WAN.DNS64 = state.DNS64Discovery{None: true, At: now.Add(-time.Second)} }
	aftr := func(st *state.State) {
		st.WAN.AFTRName, st.WAN.AFTR = "aftr.example.test", netip.MustParseAddr("2001:db8:0:5::1")
	}
	all := edit.All[state.State]
	for _, tc := range []struct {
		name string
		edit func(*state.State)
		want state.Line
	}{
		{"nothing heard: unknown", func(*state.State) {}, state.LineUnknown},
		{"IPv6 and an IPv4 lease: dual-stack", all(v6, v4), state.LineDualStack},
		{"an IPv4 lease only: ipv4-only", v4, state.LineIPv4Only},
		{"an expired IPv4 lease is no IPv4", all(v6, v4, noDNS64, func(st *state.State) { st.WAN.IPv4.Expires = now }), state.LineIPv6Only},
		{"RFC 8781: IPv6 and the ISP's PREF64: ipv6-only-nat64", all(v6, func(st *state.State) { st.WAN.UpstreamPref64 = nsp }), state.LineIPv6OnlyNAT64},
		{"RFC 7050: IPv6 and a prefix from the ISP's DNS64: ipv6-only-nat64", all(v6, func(st *state.State) {
			st.WAN.DNS64 = state.DNS64Discovery{Prefix: nsp, ValidUntil: later, At: now}
		}), state.LineIPv6OnlyNAT64},
		{"RFC 7050: a discovered prefix past its TTL counts no more", all(v6, noDNS64, func(st *state.State) {
			st.WAN.DNS64 = state.DNS64Discovery{Prefix: nsp, ValidUntil: now, At: now.Add(-time.Hour)}
		}), state.LineUnknown},
		{"RFC 6333: an AFTR makes it ds-lite", all(v6, func(st *state.State) { st.WAN.AFTR = netip.MustParseAddr("2001:db8:0:1::a") }), state.LineDSLite},
		{"no NAT64 from the RA or the DNS64, for the hold-off: ipv6-only", all(v6, noDNS64), state.LineIPv6Only},
		{"RFC 6334: an AFTR named but not resolved yet: not known, not ipv6-only", all(v6, noDNS64, func(st *state.State) { st.WAN.AFTRName = "aftr.example.test" }), state.LineUnknown},
		{"RFC 6333 §5: a native IPv4 lease wins over the AFTR", all(v6, v4, aftr), state.LineDualStack},
		{"an expired IPv4 lease with an AFTR: ds-lite", all(v6, v4, aftr, func(st *state.State) { st.WAN.IPv4.Expires = now }), state.LineDSLite},
		{"a delegation is IPv6 too", all(aftr, func(st *state.State) {
			st.Delegated = &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), ValidUntil: later}
		}), state.LineDSLite},
		{"an AFTR without IPv6 upstream: not known", aftr, state.LineUnknown},
		{"a global WAN address is IPv6 too", all(noDNS64, func(st *state.State) {
			st.WAN.Up, st.WAN.LinkUpSince, st.UpstreamDNS = true, longUp, resolver
			st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::5/64")}
		}), state.LineIPv6Only},
		{"within the hold-off the IPv4 story is unknown", all(v6, noDNS64, func(st *state.State) { st.WAN.LinkUpSince = now.Add(-time.Second) }), state.LineUnknown},
		{"without discovery's answer the IPv4 story is unknown", v6, state.LineUnknown},
		{"discovery's answer from before the link came up does not count", all(v6, noDNS64, func(st *state.State) {
			st.WAN.DNS64.At = longUp.Add(-time.Second)
		}), state.LineUnknown},
		{"without any resolver there is nothing to discover", all(v6, func(st *state.State) { st.UpstreamDNS = nil }), state.LineIPv6Only},
		{"the WAN link down: not judged", all(v6, noDNS64, func(st *state.State) { st.WAN.Up = false }), state.LineUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{}
			tc.edit(st)
			if got := LineOf(st, now); got != tc.want {
				t.Errorf("LineOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDerivePref64Discovered(t *testing.T) {
	now := time.Now()
	nsp := netip.MustParsePrefix("2001:db8:46::/96")
	found := state.DNS64Discovery{Prefix: nsp, ValidUntil: now.Add(time.Minute), At: now}
	for _, tc := range []struct {
		name       string
		wan        state.WAN
		flag       netip.Prefix
		want       netip.Prefix
		wantSource state.Pref64Source
	}{
		{"RFC 7050: the ISP's DNS64's prefix on a line without IPv4", state.WAN{DNS64: found}, netip.Prefix{}, nsp, state.Pref64Discovered},
		{"RFC 8781: the RA's PREF64 wins over discovery", state.WAN{DNS64: found, UpstreamPref64: netip.MustParsePrefix("2001:db8:47::/96")},
			netip.Prefix{}, netip.MustParsePrefix("2001:db8:47::/96"), state.Pref64Upstream},
		{"with an IPv4 lease the gizmo translates itself", state.WAN{DNS64: found, IPv4: &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24")}},
			netip.Prefix{}, state.WellKnownPref64, state.Pref64Default},
		{"past its TTL the discovered prefix is gone", state.WAN{DNS64: state.DNS64Discovery{Prefix: nsp, ValidUntil: now}}, netip.Prefix{}, state.WellKnownPref64, state.Pref64Default},
		{"-pref64 wins over discovery", state.WAN{DNS64: found}, netip.MustParsePrefix("2001:db8:64::/96"), netip.MustParsePrefix("2001:db8:64::/96"), state.Pref64Flag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{WAN: tc.wan}
			Derive(st, Settings{Pref64: tc.flag}, now)
			if st.Pref64 != tc.want || st.Pref64Source != tc.wantSource {
				t.Errorf("Pref64 = %v (%s), want %v (%s)", st.Pref64, st.Pref64Source, tc.want, tc.wantSource)
			}
		})
	}
}
