package main

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func TestDerivePref64(t *testing.T) {
	up := netip.MustParsePrefix("2001:db8:64::/96")
	flagged := netip.MustParsePrefix("2001:db8:46::/96")
	for _, tc := range []struct {
		name       string
		cfg        config
		upstream   netip.Prefix
		want       netip.Prefix
		wantSource state.Pref64Source
	}{
		{"RFC 6052 §2.1: the well-known prefix without other information", config{}, netip.Prefix{}, state.WellKnownPref64, state.Pref64Default},
		{"RFC 8781: the upstream's PREF64 wins over the default", config{}, up, up, state.Pref64Upstream},
		{"-pref64 overrides discovery", config{Pref64: flagged, Pref64Set: true}, up, flagged, state.Pref64Flag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{WAN: state.WAN{UpstreamPref64: tc.upstream}}
			derive(st, tc.cfg, time.Now())
			if st.Pref64 != tc.want || st.Pref64Source != tc.wantSource {
				t.Errorf("Pref64 = %v (%s), want %v (%s)", st.Pref64, st.Pref64Source, tc.want, tc.wantSource)
			}
		})
	}
}

func TestDeriveUpstreamDNS(t *testing.T) {
	st := &state.State{WAN: state.WAN{
		RDNSS:     []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")},
		DHCPv6DNS: []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53"), netip.MustParseAddr("2001:db8:0:1::54")},
		IPv4:      &state.IPv4Lease{DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}},
	}}
	derive(st, config{}, time.Now())
	want := []string{"[2001:db8:0:1::53]:53", "[2001:db8:0:1::54]:53", "192.0.2.53:53"}
	if len(st.UpstreamDNS) != len(want) {
		t.Fatalf("UpstreamDNS = %v, want %v", st.UpstreamDNS, want)
	}
	for i := range want {
		if st.UpstreamDNS[i].String() != want[i] {
			t.Errorf("UpstreamDNS[%d] = %v, want %v", i, st.UpstreamDNS[i], want[i])
		}
	}
	derive(st, config{DNSUpstream: []netip.AddrPort{netip.MustParseAddrPort("[::1]:5353")}}, time.Now())
	if len(st.UpstreamDNS) != 1 || st.UpstreamDNS[0].String() != "[::1]:5353" {
		t.Errorf("-dns-upstream did not override discovery: %v", st.UpstreamDNS)
	}
}

func TestRenumberingRetiresTheOldPrefix(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := &state.State{}
	first := state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(4 * time.Hour)}
	newDelegation(st, first, now)
	// The same prefix renewed: nothing is retired.
	renewed := first
	renewed.ValidUntil = now.Add(5 * time.Hour)
	newDelegation(st, renewed, now)
	if len(st.Retired) != 0 {
		t.Fatalf("renewal retired a prefix: %v", st.Retired)
	}
	second := state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:200::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(4 * time.Hour)}
	newDelegation(st, second, now)
	if st.Delegated.Prefix != second.Prefix {
		t.Errorf("Delegated = %v, want the new prefix (odhcpd #387 deprecated the new one)", st.Delegated.Prefix)
	}
	if len(st.Retired) != 1 || st.Retired[0].Prefix != first.Prefix {
		t.Fatalf("Retired = %v, want the old prefix", st.Retired)
	}
	r := st.Retired[0]
	if !r.PreferredUntil.Equal(now) {
		t.Errorf("RFC 9096 §3: old prefix preferred until %v, want deprecated now", r.PreferredUntil)
	}
	if got := r.ValidUntil.Sub(now); got != maxRetiredValid {
		t.Errorf("RFC 9096 §3.3: old prefix valid for %v, want ND_VALID_LIMIT %v", got, maxRetiredValid)
	}
	// Once its valid lifetime is over, the retired prefix disappears.
	derive(st, config{}, now.Add(maxRetiredValid+time.Second))
	if len(st.Retired) != 0 {
		t.Errorf("expired retired prefix kept: %v", st.Retired)
	}
	// Renumbering back to a retired prefix takes it out of retirement.
	newDelegation(st, first, now)
	newDelegation(st, second, now)
	newDelegation(st, first, now)
	for _, r := range st.Retired {
		if r.Prefix == first.Prefix {
			t.Errorf("the active prefix is also retired: %v", st.Retired)
		}
	}
}

func TestLostDelegationIsRetired(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := &state.State{}
	newDelegation(st, state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Minute), ValidUntil: now.Add(10 * time.Minute)}, now)
	lostDelegation(st, now)
	if st.Delegated != nil || len(st.Retired) != 1 || !st.Retired[0].ValidUntil.Equal(now.Add(10*time.Minute)) {
		t.Errorf("after loss: Delegated=%v Retired=%v", st.Delegated, st.Retired)
	}
}

func TestLegacyNetworkAvoidsTheWAN(t *testing.T) {
	def := netip.MustParsePrefix("192.168.64.1/24")
	lease := func(s string) *state.IPv4Lease { return &state.IPv4Lease{Addr: netip.MustParsePrefix(s)} }
	for _, tc := range []struct {
		name string
		cfg  config
		wan  *state.IPv4Lease
		want string
	}{
		{"no WAN lease: the default", config{LANIPv4: def}, nil, "192.168.64.1/24"},
		{"WAN elsewhere: the default", config{LANIPv4: def}, lease("192.0.2.100/24"), "192.168.64.1/24"},
		{"behind a router on the same /24: moved", config{LANIPv4: def}, lease("192.168.64.20/24"), "10.64.64.1/24"},
		{"behind a router with a /16 around it: moved", config{LANIPv4: def}, lease("192.168.1.20/16"), "10.64.64.1/24"},
		{"the flag is never second-guessed", config{LANIPv4: def, LANIPv4Set: true}, lease("192.168.64.20/24"), "192.168.64.1/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := legacyNetwork(tc.cfg, tc.wan); got.String() != tc.want {
				t.Errorf("legacyNetwork = %v, want %v", got, tc.want)
			}
		})
	}
}
