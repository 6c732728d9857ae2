package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/special4"
	"codeberg.org/monostack/gizmo/services/clat"
	"codeberg.org/monostack/gizmo/services/lanif"
	"codeberg.org/monostack/gizmo/services/ra"
)

func TestCLATAddress(t *testing.T) {
	deleg := func(p string) *Delegation {
		d := delegationOf(state.DelegatedPrefix{Prefix: netip.MustParsePrefix(p)})
		return &d
	}
	shared := &state.UpstreamPrefix{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64")}
	for _, tc := range []struct {
		name  string
		n     Network
		want  string
		place CLATPlace
	}{
		{"RFC 6877 §6.3: the last /64 of a /56, dedicated (the LAN has the first)", Network{Delegated: deleg("2001:db8:1000:100::/56")}, "2001:db8:1000:1ff::464", CLATDedicated},
		{"RFC 6877 §6.3: the last /64 of a /48", Network{Delegated: deleg("2001:db8:1000::/48")}, "2001:db8:1000:ffff::464", CLATDedicated},
		{"RFC 6877 §6.3: the last /64 of a /63, never the LAN's", Network{Delegated: deleg("2001:db8:1000:100::/63")}, "2001:db8:1000:101::464", CLATDedicated},
		{"a /64 delegation: an address in the LAN /64, held on the LAN", Network{Delegated: deleg("2001:db8:1000:100::/64")}, "2001:db8:1000:100::464", CLATOnLAN},
		{"RFC 7278: no delegation, a shared WAN /64: held on the uplink", Network{Shared: shared}, "2001:db8:0:1::464", CLATOnWAN},
		{"a delegation wins over a shared /64", Network{Delegated: deleg("2001:db8:1000:100::/60"), Shared: shared}, "2001:db8:1000:10f::464", CLATDedicated},
		{"nothing to take an address from", Network{}, "invalid IP", CLATNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, place := CLATAddress(tc.n)
			if a.String() != tc.want || place != tc.place {
				t.Errorf("CLATAddress = %v (%d), want %s (%d)", a, place, tc.want, tc.place)
			}
			if tc.n.Delegated != nil && place != CLATNone && tc.n.Delegated.Prefix.Bits() < 64 && tc.n.Delegated.LAN.Contains(a) {
				t.Errorf("%v is in the LAN /64 %v", a, tc.n.Delegated.LAN)
			}
		})
	}
}

// clatState is an IPv6-only line with the ISP's NAT64, a /56 and a legacy
// LAN.
func clatState() *state.State {
	st := raState()
	st.WAN.Ifindex, st.WAN.MTU = 2, 1500
	st.Pref64, st.Pref64Source = netip.MustParsePrefix("2001:db8:46::/96"), state.Pref64Upstream
	st.WAN.UpstreamPref64 = st.Pref64
	st.Line = state.LineIPv6OnlyNAT64
	st.LAN.Legacy4 = netip.MustParsePrefix("203.0.113.129/25")
	return st
}

func TestCLATPlan(t *testing.T) {
	for _, tc := range []modeCase[clat.Plan]{
		{"RFC 6877: on an IPv6-only line with the ISP's NAT64 the CLAT translates to its prefix", func(*state.State) {}, false,
			clat.Plan{Pref64: netip.MustParsePrefix("2001:db8:46::/96"), Address: netip.MustParseAddr("2001:db8:1000:1ff::464"), WANIfindex: 2, WANMTU: 1500}},
		{"RFC 6052 §3.1: with the well-known prefix non-global IPv4 is unreachable", func(st *state.State) { st.Pref64 = state.WellKnownPref64 }, false,
			clat.Plan{Pref64: state.WellKnownPref64, Address: netip.MustParseAddr("2001:db8:1000:1ff::464"), WANIfindex: 2, WANMTU: 1500, Unreachable: special4.NonGlobal()}},
		{"RFC 7278: on a shared /64 the address is claimed on the uplink", func(st *state.State) {
			st.Delegated = nil
			st.Shared = &state.UpstreamPrefix{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), ValidUntil: raNow.Add(time.Hour)}
		}, false, clat.Plan{Pref64: netip.MustParsePrefix("2001:db8:46::/96"), Address: netip.MustParseAddr("2001:db8:0:1::464"), ClaimOnWAN: true, WANIfindex: 2, WANMTU: 1500}},
		{"a dual-stack line needs no CLAT", func(st *state.State) { st.Line = state.LineDualStack }, false, clat.Plan{}},
		{"a line without any IPv4 has nothing to translate to", func(st *state.State) { st.Line = state.LineIPv6Only }, false, clat.Plan{}},
		{"an existing network's router serves its legacy hosts", func(*state.State) {}, true, clat.Plan{}},
		{"the WAN link down: off", func(st *state.State) { st.WAN.Up = false }, false, clat.Plan{}},
		{"no prefix to take an address from: off", func(st *state.State) { st.Delegated = nil }, false, clat.Plan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := clatState()
			tc.edit(st)
			got := CLAT(st, tc.existing, raNow)
			if got.Pref64 != tc.want.Pref64 || got.Address != tc.want.Address || got.ClaimOnWAN != tc.want.ClaimOnWAN ||
				got.WANIfindex != tc.want.WANIfindex || got.WANMTU != tc.want.WANMTU || !slices.Equal(got.Unreachable, tc.want.Unreachable) {
				t.Errorf("CLAT = %+v, want %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the plan is invalid: %v", err)
			}
		})
	}
}

// RFC 6877 §6.3 with a /64 delegation: the CLAT's address in the LAN /64
// is on the LAN interface, deprecated and without a route of its own.
func TestLANHoldsTheCLATAddress(t *testing.T) {
	st := clatState()
	st.Delegated.Prefix = netip.MustParsePrefix("2001:db8:1000:100::/64")
	want := lanif.Addr{Prefix: netip.MustParsePrefix("2001:db8:1000:100::464/64"), NoPrefixRoute: true, PreferredUntil: raNow}
	if !slices.Contains(LAN(st, raNow).Addrs, want) {
		t.Errorf("LAN addresses %+v lack %+v", LAN(st, raNow).Addrs, want)
	}
	st.Line = state.LineDualStack
	if slices.ContainsFunc(LAN(st, raNow).Addrs, func(a lanif.Addr) bool { return a.Prefix.Addr() == want.Prefix.Addr() }) {
		t.Error("the CLAT's address stays on the LAN without the CLAT")
	}
	// A /56: the dedicated /64 needs nothing on the LAN.
	st = clatState()
	for _, a := range LAN(st, raNow).Addrs {
		if a.Prefix.Addr() == netip.MustParseAddr("2001:db8:1000:1ff::464") {
			t.Errorf("a dedicated /64's CLAT address is on the LAN: %v", a)
		}
	}
}

func TestDiscoveryPlan(t *testing.T) {
	up := raNow.Add(-time.Minute)
	resolver := netip.MustParseAddrPort("[2001:db8:0:1::53]:53")
	base := func() *state.State {
		st := &state.State{WAN: state.WAN{Up: true, LinkUpSince: up}, UpstreamDNS: []netip.AddrPort{resolver}}
		st.LAN.DNS = raDNS
		return st
	}
	for _, tc := range []struct {
		name string
		edit func(*state.State)
		want clat.DiscoveryPlan
	}{
		{"RFC 7050: an IPv6 line without PREF64 asks the upstream resolvers", func(*state.State) {}, clat.DiscoveryPlan{Resolvers: []netip.AddrPort{resolver}, LinkUp: up}},
		{"RFC 8781 first: a PREF64 in the RA needs no discovery", func(st *state.State) { st.WAN.UpstreamPref64 = netip.MustParsePrefix("2001:db8:46::/96") }, clat.DiscoveryPlan{}},
		{"with an IPv4 lease the gizmo's own NAT64 translates", func(st *state.State) {
			st.WAN.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24")}
		}, clat.DiscoveryPlan{}},
		{"the gizmo never asks itself", func(st *state.State) {
			st.UpstreamDNS = append([]netip.AddrPort{netip.AddrPortFrom(raDNS.RDNSS, 53)}, st.UpstreamDNS...)
		}, clat.DiscoveryPlan{Resolvers: []netip.AddrPort{resolver}, LinkUp: up}},
		{"the WAN link down: nothing to ask", func(st *state.State) { st.WAN.Up = false }, clat.DiscoveryPlan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := base()
			tc.edit(st)
			got := Discovery(st, raNow)
			if !slices.Equal(got.Resolvers, tc.want.Resolvers) || !got.LinkUp.Equal(tc.want.LinkUp) {
				t.Errorf("Discovery = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The no-IPv4 rules: on a line with no IPv4 at all (no WAN IPv4, no NAT64,
// no AFTR), the DNS64 stops synthesizing, the RA stops announcing PREF64
// and its route, and every host that asks gets option 108.
func TestNoIPv4Rules(t *testing.T) {
	for _, line := range []state.Line{state.LineIPv6Only, state.LineIPv6OnlyNAT64, state.LineDualStack} {
		t.Run(string(line), func(t *testing.T) {
			st := raState()
			st.Line = line
			st.LAN.Legacy4 = netip.MustParsePrefix("203.0.113.129/25")
			st.Hosts = map[string]*state.Host{"02:00:00:00:00:01": {MAC: "02:00:00:00:00:01", Policy: state.HostPolicy{DNS64: true, V6OnlyPreferred: false}}}
			off := line == state.LineIPv6Only

			if d := DNS64(st, raNow); d.Pref64.IsValid() == off {
				t.Errorf("DNS64 prefix %v: synthesis should be %v", d.Pref64, !off)
			}
			r := RA(st, RAOptions{}, raNow)
			if r.Pref64.IsValid() == off {
				t.Errorf("RFC 8781 PREF64 %v: announced should be %v", r.Pref64, !off)
			}
			if routed := slices.ContainsFunc(r.Routes, func(x ra.Route) bool { return x.Prefix == raPref64 }); routed == off {
				t.Errorf("RFC 4191 route to the NAT64 prefix: %v, want %v", routed, !off)
			}
			d4 := DHCP4(st, 1800*time.Second, nil)
			if got := d4.Hosts["02:00:00:00:00:01"].V6OnlyPreferred; got != off {
				t.Errorf("RFC 8925: option 108 for a host whose policy says no: %v, want %v", got, off)
			}
			if d4.DefaultV6OnlyPreferred != true {
				t.Error("option 108 is off by default")
			}
		})
	}
}

// The legacy hosts' IPv4 leaves by clat0 while the CLAT runs: the
// accounting counts it there.
func TestAccountingFollowsTheCLAT(t *testing.T) {
	st := clatState()
	st.WAN.Interface, st.LAN.Interface = "uplink0", "lan0"
	if got := All(st, Options{}, raNow).Accounting; got.IPv4Out != clat.Interface || got.WAN != "uplink0" {
		t.Errorf("accounting %+v, want IPv4 out of %s", got, clat.Interface)
	}
	st.Line = state.LineDualStack
	if got := All(st, Options{}, raNow).Accounting; got.IPv4Out != "" {
		t.Errorf("accounting %+v without the CLAT", got)
	}
}
