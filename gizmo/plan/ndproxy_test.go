package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/ndproxy"
	"codeberg.org/monostack/gizmo/services/ra"
	"github.com/google/go-cmp/cmp"
)

var (
	wan64    = netip.MustParsePrefix("2001:db8:0:1::/64")
	wanSLAAC = netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:102/64")
)

// sharedState is the lab's no-PD scenario: the upstream advertises
// 2001:db8:0:1::/64 on-link and autonomous, the WAN holds a SLAAC address
// in it, and nothing is delegated.
func sharedState() *state.State {
	st := raState()
	st.Delegated = nil
	st.WAN.Interface = "uplink0"
	st.LAN.Interface = "lan0"
	st.WAN.Addrs = []netip.Prefix{wanSLAAC}
	st.WAN.Prefixes = []state.UpstreamPrefix{{
		Prefix: wan64, OnLink: true, Autonomous: true,
		PreferredUntil: raNow.Add(20 * time.Minute), ValidUntil: raNow.Add(40 * time.Minute),
	}}
	// What gizmo/derive decides after the hold-off.
	shared := st.WAN.Prefixes[0]
	st.Shared = &shared
	return st
}

// RFC 4861 4.6.2 and RFC 7278 4.3: the shared /64 is advertised with L=0
// and A=1 next to the ULA, with the upstream's lifetimes under the
// RFC 9096 caps.
func TestRASharedPrefix(t *testing.T) {
	st := sharedState()
	got := RA(st, RAOptions{}, raNow).Prefixes
	want := []ra.Prefix{
		{
			Prefix: wan64, OnLink: false, Autonomous: true,
			PreferredUntil: raNow.Add(20 * time.Minute), ValidUntil: raNow.Add(40 * time.Minute),
			MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second,
		},
		{
			Prefix: netip.MustParsePrefix("fd12:3456:789a::/64"), OnLink: true, Autonomous: true,
			MaxPreferred: 2700 * time.Second, MaxValid: 5400 * time.Second,
		},
	}
	if d := cmp.Diff(want, got, pfxCmp); d != "" {
		t.Errorf("PIOs (-want +got):\n%s", d)
	}
	// The lifetimes on the wire never exceed the upstream's.
	pref, valid := got[0].Lifetimes(raNow)
	if pref != 20*time.Minute || valid != 40*time.Minute {
		t.Errorf("lifetimes = %v/%v, want the upstream's 20m/40m", pref, valid)
	}
	// An upstream with lifetimes beyond RFC 9096's gets the caps.
	st.Shared.PreferredUntil, st.Shared.ValidUntil = raNow.Add(7*24*time.Hour), raNow.Add(30*24*time.Hour)
	pref, valid = RA(st, RAOptions{}, raNow).Prefixes[0].Lifetimes(raNow)
	if pref != 2700*time.Second || valid != 5400*time.Second {
		t.Errorf("lifetimes = %v/%v, want the RFC 9096 caps 2700s/5400s", pref, valid)
	}
	// Not shared (yet, or any more): not advertised.
	st.Shared = nil
	for _, p := range RA(st, RAOptions{}, raNow).Prefixes {
		if p.Prefix == wan64 {
			t.Errorf("the upstream /64 is advertised although it is not shared: %+v", p)
		}
	}
}

// RFC 9096 §3.5: a /64 that stopped being shared (a delegation arrived) is
// advertised with preferred lifetime 0 until its deadline, next to the
// delegation's /64, and stays a LAN prefix and proxied until then.
func TestRetiredSharedPrefix(t *testing.T) {
	st := sharedState()
	st.Delegated = raState().Delegated
	st.Shared = nil
	st.SharedRetired = &state.UpstreamPrefix{Prefix: wan64, OnLink: true, Autonomous: true, PreferredUntil: raNow, ValidUntil: raNow.Add(30 * time.Minute)}
	var got *ra.Prefix
	for _, p := range RA(st, RAOptions{}, raNow).Prefixes {
		if p.Prefix == wan64 {
			got = &p
		}
	}
	if got == nil {
		t.Fatal("the retired shared /64 is not advertised")
	}
	if pref, valid := got.Lifetimes(raNow); pref != 0 || valid != 30*time.Minute || got.OnLink {
		t.Errorf("retired shared PIO: preferred %v valid %v L=%v, want 0, 30m, L=0", pref, valid, got.OnLink)
	}
	if p := NDProxy(st, raNow); p.Prefix != wan64 {
		t.Errorf("NDProxy prefix = %v, want the retired %v still proxied", p.Prefix, wan64)
	}
	if fw, _ := Firewall(st, raNow); !slices.Equal(fw.Shared, []netip.Prefix{wan64}) {
		t.Errorf("firewall Shared = %v, want the retired %v", fw.Shared, wan64)
	}
	// Past its deadline it is gone everywhere.
	later := raNow.Add(31 * time.Minute)
	st.Delegated.ValidUntil = later.Add(time.Hour)
	for _, p := range RA(st, RAOptions{}, later).Prefixes {
		if p.Prefix == wan64 {
			t.Errorf("an invalid retired shared /64 is still advertised: %+v", p)
		}
	}
	if p := NDProxy(st, later); p.Prefix.IsValid() {
		t.Errorf("NDProxy after the deadline = %+v", p)
	}
}

func TestNDProxyPlan(t *testing.T) {
	st := sharedState()
	hostAddr := netip.MustParseAddr("2001:db8:0:1:0:ff:fe00:210")
	st.Hosts = map[string]*state.Host{
		"02:00:00:00:02:10": {Addrs: map[netip.Addr]time.Time{
			hostAddr: raNow.Add(-time.Minute),
			netip.MustParseAddr("2001:db8:0:1::dead"): raNow.Add(-NDProxyHostMaxAge - time.Second), // too old
			netip.MustParseAddr("fd12:3456:789a::10"): raNow,                                       // ULA: not shared
			netip.MustParseAddr("203.0.113.140"):      raNow,
		}},
	}
	got := NDProxy(st, raNow)
	want := ndproxy.Plan{
		Prefix: wan64,
		Own:    []netip.Addr{wanSLAAC.Addr()},
		Hosts:  []ndproxy.Sighting{{Addr: hostAddr, At: raNow.Add(-time.Minute)}},
	}
	if d := cmp.Diff(want, got, pfxCmp, addrCmp); d != "" {
		t.Errorf("NDProxy (-want +got):\n%s", d)
	}
	st.Shared = nil
	if got := NDProxy(st, raNow); got.Prefix.IsValid() || len(got.Hosts) != 0 {
		t.Errorf("nothing shared: NDProxy = %+v", got)
	}
}

// The shared /64 is a LAN prefix for the NAT64's sources and BCP 38, and
// the firewall does not call the WAN-side neighbours in it spoofers.
func TestSharedPrefixInNAT64AndFirewall(t *testing.T) {
	st := sharedState()
	st.WAN.IPv4 = &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.100/24"), Expires: raNow.Add(time.Hour)}
	n := NAT64(st, false, raNow)
	if !slices.Contains(n.LANPrefixes, wan64) {
		t.Errorf("NAT64 sources %v lack the shared %v", n.LANPrefixes, wan64)
	}
	fw, err := Firewall(st, raNow)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fw.Shared, []netip.Prefix{wan64}) {
		t.Errorf("firewall Shared = %v, want [%v]", fw.Shared, wan64)
	}
	if slices.Contains(fw.LANPrefixes, wan64) || fw.Delegated.IsValid() {
		t.Errorf("the shared /64 must not be in LANPrefixes or Delegated (both are spoofed from the WAN): %+v", fw)
	}
	st.Shared = nil
	if fw, _ := Firewall(st, raNow); len(fw.Shared) != 0 {
		t.Errorf("nothing shared, firewall Shared = %v", fw.Shared)
	}
}
