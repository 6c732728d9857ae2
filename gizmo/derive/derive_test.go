package derive

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
		flag       netip.Prefix
		upstream   netip.Prefix
		want       netip.Prefix
		wantSource state.Pref64Source
	}{
		{"RFC 6052 §2.1: the well-known prefix without other information", netip.Prefix{}, netip.Prefix{}, state.WellKnownPref64, state.Pref64Default},
		{"RFC 8781: the upstream's PREF64 wins over the default", netip.Prefix{}, up, up, state.Pref64Upstream},
		{"-pref64 overrides discovery", flagged, up, flagged, state.Pref64Flag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state.State{WAN: state.WAN{UpstreamPref64: tc.upstream}}
			Derive(st, Settings{Pref64: tc.flag}, time.Now())
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
	Derive(st, Settings{}, time.Now())
	want := []string{"[2001:db8:0:1::53]:53", "[2001:db8:0:1::54]:53", "192.0.2.53:53"}
	if len(st.UpstreamDNS) != len(want) {
		t.Fatalf("UpstreamDNS = %v, want %v", st.UpstreamDNS, want)
	}
	for i := range want {
		if st.UpstreamDNS[i].String() != want[i] {
			t.Errorf("UpstreamDNS[%d] = %v, want %v", i, st.UpstreamDNS[i], want[i])
		}
	}
	Derive(st, Settings{DNSUpstream: []netip.AddrPort{netip.MustParseAddrPort("[::1]:5353")}}, time.Now())
	if len(st.UpstreamDNS) != 1 || st.UpstreamDNS[0].String() != "[::1]:5353" {
		t.Errorf("-dns-upstream did not override discovery: %v", st.UpstreamDNS)
	}
}

// The DNS service's addresses sit in the ULA /64 (RDNSS ::53, DHCPv6
// ::35) and at the legacy address, so that renumbering never moves them.
func TestDeriveDNSAddrs(t *testing.T) {
	st := &state.State{ULA: netip.MustParsePrefix("fd12:3456:789a::/48")}
	Derive(st, Settings{LANIPv4: netip.MustParsePrefix("192.168.64.1/24")}, time.Now())
	want := state.DNSAddrs{
		RDNSS:  netip.MustParseAddr("fd12:3456:789a::53"),
		DHCPv6: netip.MustParseAddr("fd12:3456:789a::35"),
		DHCPv4: netip.MustParseAddr("192.168.64.1"),
	}
	if st.LAN.DNS != want {
		t.Errorf("LAN.DNS = %+v, want %+v", st.LAN.DNS, want)
	}
}

func TestRenumberingRetiresTheOldPrefix(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := &state.State{}
	first := state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(4 * time.Hour)}
	NewDelegation(st, first, now)
	// The same prefix renewed: nothing is retired.
	renewed := first
	renewed.ValidUntil = now.Add(5 * time.Hour)
	NewDelegation(st, renewed, now)
	if len(st.Retired) != 0 {
		t.Fatalf("renewal retired a prefix: %v", st.Retired)
	}
	second := state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:200::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(4 * time.Hour)}
	NewDelegation(st, second, now)
	if st.Delegated.Prefix != second.Prefix {
		t.Errorf("Delegated = %v, want the new prefix (never deprecate the new one)", st.Delegated.Prefix)
	}
	if len(st.Retired) != 1 || st.Retired[0].Prefix != first.Prefix {
		t.Fatalf("Retired = %v, want the old prefix", st.Retired)
	}
	r := st.Retired[0]
	if !r.PreferredUntil.Equal(now) {
		t.Errorf("RFC 9096 §3: old prefix preferred until %v, want deprecated now", r.PreferredUntil)
	}
	if got := r.ValidUntil.Sub(now); got != MaxRetiredValid {
		t.Errorf("RFC 9096 §3.3: old prefix valid for %v, want ND_VALID_LIMIT %v", got, MaxRetiredValid)
	}
	// Once its valid lifetime is over, the retired prefix disappears.
	Derive(st, Settings{}, now.Add(MaxRetiredValid+time.Second))
	if len(st.Retired) != 0 {
		t.Errorf("expired retired prefix kept: %v", st.Retired)
	}
	// Renumbering back to a retired prefix takes it out of retirement.
	NewDelegation(st, first, now)
	NewDelegation(st, second, now)
	NewDelegation(st, first, now)
	for _, r := range st.Retired {
		if r.Prefix == first.Prefix {
			t.Errorf("the active prefix is also retired: %v", st.Retired)
		}
	}
}

func TestLostDelegationIsRetired(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := netip.MustParsePrefix("2001:db8:1000:100::/56")
	st := &state.State{}
	NewDelegation(st, state.DelegatedPrefix{Prefix: p, PreferredUntil: now.Add(time.Minute), ValidUntil: now.Add(10 * time.Minute)}, now)
	LostDelegation(st, netip.MustParsePrefix("2001:db8:1000:200::/56"), now)
	if st.Delegated == nil {
		t.Fatalf("the loss of another prefix dropped the current one")
	}
	LostDelegation(st, p, now)
	if st.Delegated != nil || len(st.Retired) != 1 || !st.Retired[0].ValidUntil.Equal(now.Add(10*time.Minute)) {
		t.Errorf("after loss: Delegated=%v Retired=%v", st.Delegated, st.Retired)
	}
}

func TestDeriveForgetsOldHostAddrs(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	fresh, stale := netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::11")
	st := &state.State{Hosts: map[string]*state.Host{"02:00:00:00:00:10": {
		Addrs: map[netip.Addr]time.Time{fresh: now.Add(-time.Hour), stale: now.Add(-HostAddrTTL - time.Second)},
	}}}
	Derive(st, Settings{}, now)
	addrs := st.Hosts["02:00:00:00:00:10"].Addrs
	if _, ok := addrs[fresh]; !ok {
		t.Errorf("an address seen an hour ago was forgotten")
	}
	if _, ok := addrs[stale]; ok {
		t.Errorf("RFC 8981 temporary addresses: an address unseen for over %v is kept", HostAddrTTL)
	}
}

func TestLegacyNetworkAvoidsTheWAN(t *testing.T) {
	def := netip.MustParsePrefix("192.168.64.1/24")
	lease := func(s string) *state.IPv4Lease { return &state.IPv4Lease{Addr: netip.MustParsePrefix(s)} }
	for _, tc := range []struct {
		name string
		set  bool
		wan  *state.IPv4Lease
		want string
	}{
		{"no WAN lease: the default", false, nil, "192.168.64.1/24"},
		{"WAN elsewhere: the default", false, lease("192.0.2.100/24"), "192.168.64.1/24"},
		{"behind a router on the same /24: moved", false, lease("192.168.64.20/24"), "10.64.64.1/24"},
		{"behind a router with a /16 around it: moved", false, lease("192.168.1.20/16"), "10.64.64.1/24"},
		{"the flag is never second-guessed", true, lease("192.168.64.20/24"), "192.168.64.1/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LegacyNetwork(def, tc.set, tc.wan); got.String() != tc.want {
				t.Errorf("LegacyNetwork = %v, want %v", got, tc.want)
			}
		})
	}
}
