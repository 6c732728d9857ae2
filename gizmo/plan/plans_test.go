package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/fastpath"
	"codeberg.org/monostack/gizmo/services/lanif"
)

func TestExistingNetworkLANKeepsUpstreamAddrs(t *testing.T) {
	now := netNow
	later := now.Add(time.Hour)
	ula := netip.MustParsePrefix("fd00:1:2::/48")
	slaac := netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:201/64")
	st := &state.State{
		ULA:       ula,
		LAN:       state.LAN{DNS: state.DNSAddrsIn(ula, netip.Prefix{})},
		Delegated: &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), ValidUntil: later},
		WAN: state.WAN{
			Addrs: []netip.Prefix{slaac, netip.MustParsePrefix("fd00:1:2::1/64"), netip.MustParsePrefix("2001:db8:1000::1/64")},
			IPv4:  &state.IPv4Lease{Addr: netip.MustParsePrefix("192.0.2.101/24"), Expires: later},
		},
	}
	var got []netip.Prefix
	for _, a := range ExistingNetworkLAN(st, now).Addrs {
		got = append(got, a.Prefix)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("fd00:1:2::1/64"), netip.MustParsePrefix("fd00:1:2::53/64"), netip.MustParsePrefix("fd00:1:2::35/64"),
		slaac, netip.MustParsePrefix("192.0.2.101/24"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("existing-network LAN plan %v, want %v (upstream addresses kept, the delegation's dropped)", got, want)
	}
	// The IPv4 lease is on the port only while it is valid.
	st.WAN.IPv4.Expires = now
	if slices.ContainsFunc(ExistingNetworkLAN(st, now).Addrs, func(a lanif.Addr) bool { return a.Prefix.Addr().Is4() }) {
		t.Errorf("an expired IPv4 lease stays on the port")
	}
}

func TestExistingNetworkPrefixes(t *testing.T) {
	st := &state.State{
		Delegated: &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), ValidUntil: netNow.Add(time.Hour)},
		WAN: state.WAN{Addrs: []netip.Prefix{
			netip.MustParsePrefix("2001:db8:0:1:0:ff:fe00:201/64"),
			netip.MustParsePrefix("2001:db8:0:1::99/64"),
			netip.MustParsePrefix("fd00:1:2::1/64"),
			netip.MustParsePrefix("2001:db8:1000::1/64"),
		}},
	}
	got := ExistingNetworkPrefixes(st, netNow)
	if want := []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::/64")}; !slices.Equal(got, want) {
		t.Errorf("ExistingNetworkPrefixes = %v, want %v (the network's /64 once; no ULA, no delegation)", got, want)
	}
}

func TestDHCP6PDConfirmsAfterLinkUp(t *testing.T) {
	up := netNow.Add(-time.Second)
	for _, tc := range []struct {
		name string
		wan  state.WAN
		want time.Time
	}{
		{"RFC 8415 §18.2.12: the WAN came back up: confirm the binding once for that moment", state.WAN{Up: true, LinkUpSince: up}, up},
		{"the link is down: nothing to confirm", state.WAN{Up: false, LinkUpSince: up}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DHCP6PDOf(&state.State{WAN: tc.wan}).ConfirmLinkUp; !got.Equal(tc.want) {
				t.Errorf("ConfirmLinkUp = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFastpathPlan(t *testing.T) {
	st := netState()
	st.Pref64 = netip.MustParsePrefix("2001:db8:64::/96")
	st.Shared = &state.UpstreamPrefix{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), ValidUntil: netNow.Add(time.Hour)}
	p, off := Fastpath(st, netNow)
	if off != "" {
		t.Errorf("a state whose kernel was never observed: off %q, want the fast path on", off)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("2001:db8:1000:200::/64"), netip.MustParsePrefix("2001:db8:1000:100::/64"),
		netip.MustParsePrefix("fd12:3456:789a::/64"), netip.MustParsePrefix("2001:db8:0:1::/64"),
	}
	if !slices.Equal(p.LANPrefixes, want) {
		t.Errorf("the fast path's LAN prefixes %v, want the firewall's LAN prefixes and the shared /64 %v", p.LANPrefixes, want)
	}
	if !slices.Equal(p.Exclude, []netip.Prefix{st.Pref64}) {
		t.Errorf("the NAT64 prefix's flows are the NAT64's: Exclude = %v", p.Exclude)
	}
	// More prefixes than the datapath holds: the rest take the stack's path.
	for i := range fastpath.MaxLANPrefixes {
		st.Retired = append(st.Retired, state.DelegatedPrefix{
			Prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x30, byte(i)}), 56), ValidUntil: netNow.Add(time.Hour),
		})
	}
	if p, _ := Fastpath(st, netNow); len(p.LANPrefixes) != fastpath.MaxLANPrefixes {
		t.Errorf("%d LAN prefixes, want at most fastpath.MaxLANPrefixes %d", len(p.LANPrefixes), fastpath.MaxLANPrefixes)
	}
}

// The fast path runs only where it pays: in the kernel's BPF interpreter
// an offloaded packet costs more than the same packet through the ruleset
// (docs/performance.md, "Without a JIT (APU)").
func TestFastpathOnlyWhereItPays(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kernel state.Kernel
		off    string
	}{
		{"a kernel with a BPF JIT: on", state.Kernel{Observed: true, BPFJIT: true}, ""},
		{"no BPF JIT: the interpreter makes an offloaded packet dearer than the ruleset path, off", state.Kernel{Observed: true}, FastpathOffNoJIT},
		{"a kernel never observed plans as one with a JIT: on", state.Kernel{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := netState()
			st.Kernel = tc.kernel
			p, off := Fastpath(st, netNow)
			if off != tc.off {
				t.Errorf("off %q, want %q", off, tc.off)
			}
			if on := len(p.LANPrefixes) > 0; on != (tc.off == "") {
				t.Errorf("LAN prefixes %v with off %q: an empty plan is what turns the fast path off", p.LANPrefixes, off)
			}
			// Plans carries the same decision.
			all := All(st, Options{}, netNow)
			if all.FastpathOff != off || !slices.Equal(all.Fastpath.LANPrefixes, p.LANPrefixes) {
				t.Errorf("All: fast path %v, off %q; Fastpath: %v, %q", all.Fastpath.LANPrefixes, all.FastpathOff, p.LANPrefixes, off)
			}
		})
	}
}

func TestWebListen(t *testing.T) {
	n := NetworkOf(netState(), netNow)
	got := WebListen(n, "")
	if want := []string{"[fd12:3456:789a::1]:80", "203.0.113.129:80"}; !slices.Equal(got.HTTP, want) {
		t.Errorf("the dashboard's plain HTTP listens on %v, want the LAN's management addresses %v (never the uplink)", got.HTTP, want)
	}
	if want := []string{"[fd12:3456:789a::1]:443", "203.0.113.129:443"}; !slices.Equal(got.HTTPS, want) {
		t.Errorf("the dashboard's HTTPS listens on %v, want port 443 on the same addresses %v", got.HTTPS, want)
	}
	got = WebListen(n, "127.0.0.1:8080")
	if !slices.Equal(got.HTTP, []string{"127.0.0.1:8080"}) || !slices.Equal(got.HTTPS, []string{"127.0.0.1:443"}) {
		t.Errorf("-listen-web 127.0.0.1:8080: %+v, want that address for HTTP and port 443 on its host for HTTPS", got)
	}
}

// All hands out the plans of one moment: the LAN address plan follows the
// mode, and every plan comes from the same view.
func TestAllFollowsTheMode(t *testing.T) {
	st := netState()
	st.WAN.Up = true
	st.WAN.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8:0:1::5/64")}
	router := All(st, Options{}, netNow)
	existing := All(st, Options{ExistingNetwork: true}, netNow)
	has := func(p lanif.Plan, a string) bool {
		return slices.ContainsFunc(p.Addrs, func(x lanif.Addr) bool { return x.Prefix == netip.MustParsePrefix(a) })
	}
	if !has(router.LAN, "2001:db8:1000:200::1/64") || has(router.LAN, "2001:db8:0:1::5/64") {
		t.Errorf("router mode LAN plan %v", router.LAN.Addrs)
	}
	if has(existing.LAN, "2001:db8:1000:200::1/64") || !has(existing.LAN, "2001:db8:0:1::5/64") {
		t.Errorf("existing-network LAN plan %v", existing.LAN.Addrs)
	}
	if router.Deployment != DeploymentRouter || existing.Deployment != DeploymentExistingNetwork {
		t.Errorf("deployments %q, %q", router.Deployment, existing.Deployment)
	}
	if existing.DHCP6Info.Enabled || existing.RA.RouterLifetime != 0 {
		t.Errorf("existing network: DHCPv6 %+v, router lifetime %v", existing.DHCP6Info, existing.RA.RouterLifetime)
	}
}
