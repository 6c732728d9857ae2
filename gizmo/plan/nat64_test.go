package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func nat64State(now time.Time) *state.State {
	return &state.State{
		WAN: state.WAN{Up: true, Ifindex: 4, MTU: 1500, IPv4: &state.IPv4Lease{
			Addr: netip.MustParsePrefix("192.0.2.150/24"), Expires: now.Add(time.Hour)}},
		LAN:       state.LAN{Ifindex: 3, MTU: 1500, Legacy4: netip.MustParsePrefix("203.0.113.129/25"), LinkLocal: netip.MustParseAddr("fe80::1")},
		Delegated: &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), ValidUntil: now.Add(time.Hour)},
		Retired: []state.DelegatedPrefix{
			{Prefix: netip.MustParsePrefix("2001:db8:2000::/56"), ValidUntil: now.Add(time.Minute)},
			{Prefix: netip.MustParsePrefix("2001:db8:3000::/56"), ValidUntil: now.Add(-time.Minute)},
		},
		ULA:    netip.MustParsePrefix("fd00:1:2::/48"),
		Pref64: netip.MustParsePrefix("2001:db8:64::/96"),
	}
}

func TestNAT64Plan(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	denies := func(deny []netip.Prefix, a string) bool {
		return slices.ContainsFunc(deny, func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr(a)) })
	}
	// lanPoolOnly: the upstream runs the NAT64 to the internet, so the
	// gizmo translates only to its LAN, under its ULA's /96.
	lanPoolOnly := func(t *testing.T, st *state.State) {
		p := NAT64(st, false, now)
		if p.Pool4.IsValid() || p.Pref64.IsValid() {
			t.Errorf("a WAN pool %v under %v with the upstream's NAT64", p.Pool4, p.Pref64)
		}
		if p.LANLegacy.Prefix != netip.MustParsePrefix("fd00:1:2:46::/96") {
			t.Errorf("LAN pool under %v, want the ULA's /96", p.LANLegacy.Prefix)
		}
	}
	for _, c := range []struct {
		name  string
		edit  func(*state.State)
		check func(t *testing.T, st *state.State)
	}{
		{"RFC 6146 §3.5.1: the pool is the WAN's IPv4 lease", nil, func(t *testing.T, st *state.State) {
			p := NAT64(st, false, now)
			if p.Pool4 != netip.MustParseAddr("192.0.2.150") || p.LANIfindex != 3 || p.WANIfindex != 4 {
				t.Errorf("pool %v, ifindexes %d %d", p.Pool4, p.LANIfindex, p.WANIfindex)
			}
		}},
		{"no IPv4 lease: no WAN pool, the LAN pool stays", func(st *state.State) { st.WAN.IPv4 = nil }, func(t *testing.T, st *state.State) {
			if p := NAT64(st, false, now); p.Pool4.IsValid() || !p.LANLegacy.Enabled() {
				t.Errorf("pool %v, LAN pool %+v", p.Pool4, p.LANLegacy)
			}
		}},
		{"expired lease: no WAN pool", func(st *state.State) { st.WAN.IPv4.Expires = now }, func(t *testing.T, st *state.State) {
			if NAT64(st, false, now).Pool4.IsValid() {
				t.Error("a WAN pool with an expired lease")
			}
		}},
		{"WAN down: no WAN pool, the LAN pool stays", func(st *state.State) { st.WAN.Up = false }, func(t *testing.T, st *state.State) {
			if p := NAT64(st, false, now); p.Pool4.IsValid() || !p.LANLegacy.Enabled() {
				t.Errorf("pool %v, LAN pool %+v", p.Pool4, p.LANLegacy)
			}
		}},
		{"neither pool: translation off", func(st *state.State) { st.WAN.Up = false; st.LAN.Legacy4 = netip.Prefix{} }, func(t *testing.T, st *state.State) {
			if NAT64(st, false, now).Enabled() {
				t.Error("enabled with the WAN down and no legacy LAN")
			}
		}},
		{"sources: delegated /64, retired while valid (RFC 9096 §3), ULA", nil, func(t *testing.T, st *state.State) {
			got := NAT64(st, false, now).LANPrefixes
			want := []netip.Prefix{netip.MustParsePrefix("2001:db8:1000::/64"), netip.MustParsePrefix("2001:db8:2000::/64"), netip.MustParsePrefix("fd00:1:2::/64")}
			if !slices.Equal(got, want) {
				t.Errorf("LAN prefixes %v, want %v", got, want)
			}
		}},
		{"RFC 6052 §3.1: well-known prefix never reaches non-global IPv4", func(st *state.State) { st.Pref64 = netip.Prefix{} }, func(t *testing.T, st *state.State) {
			p := NAT64(st, false, now)
			if p.Pref64 != state.WellKnownPref64 {
				t.Fatalf("prefix %v", p.Pref64)
			}
			for _, a := range []string{"10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.1.1", "192.0.2.1", "198.51.100.80", "203.0.113.10", "127.0.0.1", "224.0.0.251"} {
				if !denies(p.Deny4, a) {
					t.Errorf("%s not denied", a)
				}
			}
			if denies(p.Deny4, "192.0.3.1") || denies(p.Deny4, "1.1.1.1") {
				t.Error("global address denied")
			}
		}},
		{"network-specific prefix reaches documentation addresses (the lab)", nil, func(t *testing.T, st *state.State) {
			p := NAT64(st, false, now)
			if denies(p.Deny4, "198.51.100.80") || denies(p.Deny4, "10.1.2.3") {
				t.Error("non-global address denied with a network-specific prefix")
			}
			if !denies(p.Deny4, "224.0.0.1") {
				t.Error("multicast not denied")
			}
		}},
		{"own legacy LAN never translated", nil, func(t *testing.T, st *state.State) {
			if !denies(NAT64(st, false, now).Deny4, "203.0.113.200") {
				t.Error("legacy LAN reachable through the NAT64")
			}
		}},
		{"ICMPv6 errors come from the gizmo's ULA address", nil, func(t *testing.T, st *state.State) {
			if got := NAT64(st, false, now).Router6; got != state.RouterULA(st.ULA) {
				t.Errorf("router address %v", got)
			}
		}},
		{"RFC 8781: an upstream that advertises its own PREF64 translates to the internet; the gizmo only to its LAN",
			func(st *state.State) { st.Pref64Source = state.Pref64Upstream }, lanPoolOnly},
		{"RFC 7050: an upstream whose DNS64 synthesizes into its own prefix translates to the internet; the gizmo only to its LAN",
			func(st *state.State) { st.Pref64Source = state.Pref64Discovered }, lanPoolOnly},
		{"a delegation past its valid lifetime is no source", func(st *state.State) { st.Delegated.ValidUntil = now },
			func(t *testing.T, st *state.State) {
				if slices.Contains(NAT64(st, false, now).LANPrefixes, netip.MustParsePrefix("2001:db8:1000::/64")) {
					t.Error("an expired delegation's /64 is a NAT64 source")
				}
			}},
		{"existing network: the joined network's /64s and the ULA are sources, once each; never another ULA, nor the delegation, whose first /64 is the on-link one",
			func(st *state.State) {
				st.WAN.Addrs = []netip.Prefix{
					netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:201/64"),
					netip.MustParsePrefix("2001:db8:0:1::99/64"),
					netip.MustParsePrefix("fd00:9::1/64"),
					netip.MustParsePrefix("2001:db8:1000::1/64"),
				}
			},
			func(t *testing.T, st *state.State) {
				got := NAT64(st, true, now).LANPrefixes
				want := []netip.Prefix{netip.MustParsePrefix("fd00:1:2::/64"), netip.MustParsePrefix("2001:db8:0:1::/64")}
				if !slices.Equal(got, want) {
					t.Errorf("LAN prefixes %v, want %v", got, want)
				}
				if slices.Contains(NAT64(st, false, now).LANPrefixes, netip.MustParsePrefix("2001:db8:0:1::/64")) {
					t.Error("the WAN's /64 is a source outside the existing-network mode")
				}
			}},
		{"ports leave the kernel's range alone", nil, func(t *testing.T, st *state.State) {
			p := NAT64(st, false, now)
			if p.PortsHigh.Max >= 32768 || p.PortsLow.Max >= 1024 || p.MaxSessionsPerHost == 0 {
				t.Errorf("ports %+v %+v, limit %d", p.PortsLow, p.PortsHigh, p.MaxSessionsPerHost)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := edited(nat64State(now), c.edit)
			c.check(t, st)
		})
	}
}
