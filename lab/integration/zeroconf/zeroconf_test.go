package zeroconf

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// checkServedV6 waits until gz-lan-v6 has a SLAAC address in the LAN /64
// of the delegation and reaches the IPv6-only server from it.
func checkServedV6(t *testing.T, ctx context.Context, l *netlab.Lab, delegated netip.Prefix) {
	t.Helper()
	lan64 := netip.PrefixFrom(delegated.Addr(), 64)
	a, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, lan64)
	if err != nil {
		t.Fatalf("gz-lan-v6 has no address in the LAN /64 %s: %v", lan64, err)
	}
	// The address may come from an RA sent before the gizmo learned its
	// own default router (router lifetime 0, RFC 7084 G-4); the next RA,
	// at most MIN_DELAY_BETWEEN_RAS later (RFC 4861 §10), brings the route.
	if _, err := netlab.WaitDefaultRoute6(ctx, netlab.NSLanV6, netlab.HostIf); err != nil {
		t.Fatalf("gz-lan-v6 (%s) has no default route: %v", a, err)
	}
	body, err := netlab.HTTPGet(ctx, netlab.NSLanV6, "http://["+netlab.V6OnlyServer.String()+"]/")
	if err != nil {
		t.Fatalf("gz-lan-v6 (%s) fetching the IPv6-only server: %v", a, err)
	}
	if !strings.Contains(body, "client="+a.String()) {
		t.Errorf("the IPv6-only server saw another source than %s: %q", a, body)
	}
}

// RFC 7084 WPD-2/L-2: whatever length the ISP delegates, the LAN gets a
// /64 out of it; with a /64 delegation that is the whole delegation.
func TestDelegationLengths(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		bits     int
	}{{"pd60", 60}, {"pd64", 64}, {"pd48", 48}} {
		t.Run(tc.scenario, func(t *testing.T) {
			l := upScenario(t, tc.scenario)
			ctx := testContext(t, 2*time.Minute)
			st := waitStatus(t, ctx, "a delegation", func(s status) bool { return s.Delegated != nil })
			p, err := netip.ParsePrefix(st.Delegated.Prefix)
			if err != nil || p.Bits() != tc.bits || !netlab.PDAggregate.Contains(p.Addr()) {
				t.Fatalf("delegated prefix %q, want a /%d in %s", st.Delegated.Prefix, tc.bits, netlab.PDAggregate)
			}
			checkServedV6(t, ctx, l, p)
			waitDeployment(t, ctx, l, "router")
		})
	}
}

// RFC 8781 + RFC 6147: an ISP that advertises its own PREF64 runs the
// NAT64; the gizmo synthesizes into that prefix, passes it on in its RA and
// does not translate to the internet itself (its NAT64 still reaches the
// LAN's own IPv4 devices for IPv6-only hosts).
func TestUpstreamPref64(t *testing.T) {
	l := upScenario(t, "upstream-pref64")
	ctx := testContext(t, 2*time.Minute)
	st := waitStatus(t, ctx, "the upstream PREF64", func(s status) bool {
		return s.Pref64Source == "upstream-ra" && s.Pref64 == netlab.UpstreamPref64.String()
	})
	var ins struct {
		NAT64 struct {
			ToInternet bool `json:"to_internet"`
		} `json:"nat64"`
	}
	if err := apiJSON(ctx, "/api/insights", &ins); err != nil {
		t.Fatalf("/api/insights: %v", err)
	}
	waitDeployment(t, ctx, l, "upstream-nat64")
	if ins.NAT64.ToInternet {
		t.Errorf("the gizmo's NAT64 translates to the internet although the upstream advertises PREF64 %s", netlab.UpstreamPref64)
	}
	// DNS64 synthesizes into the upstream's prefix (RFC 6052 §2.2, /96).
	want := synthesized(t, netlab.UpstreamPref64, netlab.V4OnlyServer)
	dns := rdnss(t, st)
	_, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool {
		return strings.TrimSpace(out) == want.String()
	}, "dig", "+short", "+time=1", "+tries=1", "@"+dns.String(), "v4only.example.test", "AAAA")
	if err != nil {
		t.Errorf("DNS64 answer for v4only.example.test: want %s: %v", want, err)
	}
	if st.Delegated == nil {
		st = waitStatus(t, ctx, "a delegation", func(s status) bool { return s.Delegated != nil })
	}
	p, _ := netip.ParsePrefix(st.Delegated.Prefix)
	checkServedV6(t, ctx, l, p)
}

// Issue 9, "IPv4-only upstream": no IPv6 at all from the ISP. The LAN still
// runs IPv6-only on the ULA, and reaches IPv4 servers through DNS64 and the
// gizmo's NAT64 to its WAN IPv4 address.
func TestIPv4OnlyUpstream(t *testing.T) {
	l := upScenario(t, "ipv4-only")
	ctx := testContext(t, 2*time.Minute)
	st := waitStatus(t, ctx, "a WAN IPv4 lease and a ULA", func(s status) bool { return s.WAN.IPv4 != "" && s.ULA != "" })
	if st.Delegated != nil {
		t.Errorf("delegated prefix %s from an ISP without IPv6", st.Delegated.Prefix)
	}
	waitDeployment(t, ctx, l, "ipv4-only-upstream")
	ula, err := netip.ParsePrefix(st.ULA)
	if err != nil {
		t.Fatalf("ULA %q: %v", st.ULA, err)
	}
	if _, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, netip.PrefixFrom(ula.Addr(), 64)); err != nil {
		t.Fatalf("gz-lan-v6 has no ULA address: %v", err)
	}
	// The RA plan counts an IPv4 lease plus a NAT64 prefix as an upstream:
	// the hosts get a default route (router lifetime > 0), which also
	// covers the NAT64 prefix for hosts that ignore RIOs.
	if _, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool {
		return strings.Contains(out, "default via fe80::")
	}, "ip", "-6", "route", "show"); err != nil {
		t.Errorf("gz-lan-v6 has no default route to the gizmo: %v", err)
	}
	body, err := fetchByName(ctx, l, netlab.NSLanV6, rdnss(t, st), "v4only.example.test")
	if err != nil {
		t.Fatalf("gz-lan-v6 fetching v4only through DNS64 + NAT64: %v", err)
	}
	if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) || !strings.Contains(body, "client="+st.WAN.IPv4Addr()) {
		t.Errorf("v4only answered %q; want server=%s and the gizmo's WAN address %s as client", body, netlab.V4OnlyServer, st.WAN.IPv4)
	}
}

// Issue 9, "no PD" and "behind another home router": only a /64 on the
// WAN (netlab.WANPrefix6) and no delegation. The gizmo shares that /64
// with the LAN through its ND proxy (RFC 7278 §4.3, services/ndproxy) and
// says so (deployment shared-64): gz-lan-v6 gets an address in it next to
// its ULA, fetches from the internet natively from it, the ISP's router
// reaches it on the WAN link, and IPv4 still works through DNS64 + NAT64.
func TestNoDelegation(t *testing.T) {
	for _, scenario := range []string{"no-pd", "behind-router"} {
		t.Run(scenario, func(t *testing.T) { testSharedWAN64(t, scenario) })
	}
}

func testSharedWAN64(t *testing.T, scenario string) {
	l := upScenario(t, scenario)
	ctx := testContext(t, 90*time.Second)
	st := waitStatus(t, ctx, "a WAN address from the upstream /64", func(s status) bool {
		for _, a := range s.WAN.Addrs {
			if p, err := netip.ParsePrefix(a); err == nil && netlab.WANPrefix6.Contains(p.Addr()) {
				return true
			}
		}
		return false
	})
	waitDeployment(t, ctx, l, "shared-64")

	// RFC 4862 §5.5.3: SLAAC in the shared /64, from the gizmo's PIO.
	shared, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, netlab.WANPrefix6)
	if err != nil {
		t.Fatalf("gz-lan-v6 has no address in the shared %s: %v", netlab.WANPrefix6, err)
	}
	// RFC 4861 §4.6.2: L=0, so the host keeps no on-link route for the
	// /64 and sends traffic to WAN-side neighbours through the gizmo.
	if out, err := l.Exec(ctx, netlab.NSLanV6, "ip", "-6", "route", "show", netlab.WANPrefix6.String()); err != nil || strings.Contains(string(out), "dev") {
		t.Errorf("gz-lan-v6 has an on-link route for the shared /64 (the PIO must have L=0): %q %v", out, err)
	}

	// NAT64 first, before any native traffic: the lab's hosts skip DAD,
	// so the first packet for the host's shared address is the NAT64's
	// translated reply, which the proxy must route to the LAN (RFC 6724
	// makes the host use its shared address for the synthesized one).
	if st.ULA == "" {
		st = waitStatus(t, ctx, "a ULA", func(s status) bool { return s.ULA != "" })
	}
	body, err := fetchByName(ctx, l, netlab.NSLanV6, rdnss(t, st), "v4only.example.test")
	if err != nil {
		t.Fatalf("gz-lan-v6 fetching v4only through DNS64 + NAT64: %v", err)
	}
	if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
		t.Errorf("v4only answered %q", body)
	}

	// Native IPv6 to the internet from the shared address (RFC 6724
	// prefers it to the ULA for a global destination).
	body, err = netlab.HTTPGet(ctx, netlab.NSLanV6, "http://["+netlab.V6OnlyServer.String()+"]/")
	if err != nil {
		t.Fatalf("gz-lan-v6 (%s) fetching the IPv6-only server: %v", shared, err)
	}
	if !strings.Contains(body, "client="+shared.String()) {
		t.Errorf("the IPv6-only server saw another source than %s: %q", shared, body)
	}

	// RFC 4389: the ISP's router resolves the LAN host's address on the
	// WAN link, the gizmo answers for it and routes the echo to the LAN.
	if _, err := l.WaitExec(ctx, netlab.NSISP, func(string) bool { return true },
		"ping", "-6", "-c", "1", "-W", "1", shared.String()); err != nil {
		t.Errorf("gz-isp cannot reach the LAN host's %s: %v", shared, err)
	}

	if err := apiJSON(ctx, "/api/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.Delegated != nil {
		t.Errorf("status shows delegated prefix %s from an ISP that delegates none", st.Delegated.Prefix)
	}
	ula, _ := netip.ParsePrefix(st.ULA)
	if _, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, netip.PrefixFrom(ula.Addr(), 64)); err != nil {
		t.Fatalf("gz-lan-v6 has no ULA address: %v", err)
	}
}

// RFC 8415 §18.2.4/§18.2.5: with T1 15 s and a valid lifetime of 60 s the
// delegation is renewed several times over and never lapses; the LAN keeps
// its prefix.
func TestShortLifetimes(t *testing.T) {
	if os.Getenv("GIZMO_SLOW") == "" {
		t.Skip("slow (over two minutes): set GIZMO_SLOW=1")
	}
	l := upScenario(t, "short-lifetimes")
	ctx := testContext(t, 4*time.Minute)
	st := waitStatus(t, ctx, "a delegation", func(s status) bool { return s.Delegated != nil })
	first := st.Delegated.Prefix
	deadline := time.Now().Add(150 * time.Second) // 2.5 × the valid lifetime
	for time.Now().Before(deadline) {
		var s status
		if err := apiJSON(ctx, "/api/status", &s); err != nil {
			t.Fatalf("/api/status: %v", err)
		}
		if s.Delegated == nil || s.Delegated.Prefix != first {
			t.Fatalf("the delegation %s lapsed or changed: now %+v", first, s.Delegated)
		}
		time.Sleep(2 * time.Second)
	}
	p, _ := netip.ParsePrefix(first)
	checkServedV6(t, ctx, l, p)
}

// IPv4Addr is the WAN's IPv4 address without its prefix length.
func (w statusWAN) IPv4Addr() string {
	if p, err := netip.ParsePrefix(w.IPv4); err == nil {
		return p.Addr().String()
	}
	return w.IPv4
}
