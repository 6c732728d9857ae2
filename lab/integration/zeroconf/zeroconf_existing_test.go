package zeroconf

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/services/dns64"
)

// The gizmo's and the ISP's link-local addresses on the shared link: the
// EUI-64s of MACGizmoLAN (the one port) and MACISPWAN.
const (
	existingGizmoLL = "fe80::ff:fe00:201"
	existingISPLL   = "fe80::ff:fe00:101"
)

// TestExistingNetwork: a one-port gizmo on a LAN whose router is the
// ISP's. Started without -wan/-lan, role detection finds one port and
// picks the existing-network mode. The gizmo asks that router for a prefix
// (Kea delegates a /56) and announces its first /64 on-link (PIO L=1, A=0;
// RFC 4861 §6.3.4) with its DNS64 address and NAT64 /96 in it, answering
// Neighbor Solicitations for the /96 itself. Its RA has router lifetime 0,
// so every host keeps the ISP's router as default.
//
// gz-lan-v6 is a stock Linux host (accept_ra_rt_info_max_plen 0: no RIO is
// installed); it reaches v4only.example.test by name all the same. Then it
// honours RIOs and still does; gz-lan-clat's CLAT takes the PREF64 under
// the on-link prefix. When the delegation goes, the gizmo moves to its
// ULA's /64 and withdraws the old one; when it stops, its final RA takes
// the on-link /64 away at once.
func TestExistingNetwork(t *testing.T) {
	l := upScenario(t, "existing-network")
	ctx := testContext(t, 6*time.Minute)
	st := waitStatus(t, ctx, "an on-link NAT64 prefix in a delegation", func(s status) bool {
		return s.WAN.Interface != "" && s.Delegated != nil && s.Pref64Source == "on-link" && s.LAN.DNS["rdnss"] != ""
	})
	if st.WAN.Interface != st.LAN.Interface {
		t.Errorf("WAN %q and LAN %q: want the one port in both roles", st.WAN.Interface, st.LAN.Interface)
	}
	waitDeployment(t, ctx, l, "existing-network")
	onLink, pref64, dns := existingPrefixes(t, st)

	t.Run("stock Linux host", func(t *testing.T) {
		// RFC 4861 §6.3.4: the on-link /64 from an RA with router
		// lifetime 0; no RIO, no default route via the gizmo.
		routes, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool {
			return onLinkRoute(out, onLink) && strings.Contains(out, "default via "+existingISPLL)
		}, "ip", "-6", "route", "show", "dev", netlab.HostIf)
		if err != nil {
			t.Fatalf("gz-lan-v6 routes: want %s on-link and the default via the ISP's router: %v", onLink, err)
		}
		if strings.Contains(routes, "via "+existingGizmoLL) {
			t.Errorf("a stock host has a route via the gizmo (a RIO installed, or a default route):\n%s", routes)
		}
		// A=0: no address in the on-link /64; the host keeps its address
		// from the ISP's router.
		addrs, err := netlab.Addrs(ctx, netlab.NSLanV6, netlab.HostIf)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if onLink.Contains(a.Prefix.Addr()) {
				t.Errorf("gz-lan-v6 configured %s in %s (A=0)", a.Prefix, onLink)
			}
		}
		if _, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, netlab.WANPrefix6); err != nil {
			t.Errorf("gz-lan-v6 has no address from the existing router's prefix: %v", err)
		}
		// The DNS64 in the on-link /64 answers with the NAT64 prefix.
		want := synthesized(t, pref64, netlab.V4OnlyServer)
		if _, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool {
			return strings.TrimSpace(out) == want.String()
		}, "dig", "+short", "+time=1", "+tries=1", "@"+dns.String(), "v4only.example.test", "AAAA"); err != nil {
			t.Fatalf("DNS64 answer for v4only.example.test from %s: want %s: %v", dns, want, err)
		}
		// One-armed NAT64: the host resolves the synthesized address to
		// the gizmo's MAC (RFC 4861 §7.2.2) and sends to it directly.
		body, err := fetchByName(ctx, l, netlab.NSLanV6, dns, "v4only.example.test")
		if err != nil {
			t.Fatalf("gz-lan-v6 fetching v4only through the on-link NAT64: %v", err)
		}
		if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
			t.Errorf("v4only answered %q", body)
		}
		neigh, _ := l.Exec(ctx, netlab.NSLanV6, "ip", "-6", "neigh", "show", want.String(), "dev", netlab.HostIf)
		if !strings.Contains(string(neigh), "lladdr "+netlab.MACGizmoLAN+" router") {
			t.Errorf("neighbour entry of %s: want the gizmo's MAC as a router's (RFC 4861 §7.2.4): %s", want, neigh)
		}
		if routes, _ := l.Exec(ctx, netlab.NSLanV6, "ip", "-6", "route", "show", "default"); !strings.Contains(string(routes), "via "+existingISPLL) || strings.Contains(string(routes), existingGizmoLL) {
			t.Errorf("default route after the fetch: want only the ISP's router:\n%s", routes)
		}
	})

	t.Run("host that honours RIOs", func(t *testing.T) {
		if err := l.HonourRIOs(netlab.NSLanV6, 128); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.HonourRIOs(netlab.NSLanV6, 0) })
		// A solicited RA brings the RIOs now rather than at the next
		// unsolicited one.
		if _, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool {
			return strings.Contains(out, pref64.String()+" via "+existingGizmoLL) && strings.Contains(out, "default via "+existingISPLL)
		}, "sh", "-c", "rdisc6 -1 -q "+netlab.HostIf+" >/dev/null; ip -6 route show dev "+netlab.HostIf); err != nil {
			t.Fatalf("gz-lan-v6 routes: want %s via the gizmo (RIO) and the default via the ISP's router: %v", pref64, err)
		}
		body, err := fetchByName(ctx, l, netlab.NSLanV6, dns, "v4only.example.test")
		if err != nil || !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
			t.Errorf("gz-lan-v6 fetching v4only by the RIO: %q, %v", body, err)
		}
	})

	t.Run("CLAT takes the PREF64 under the on-link prefix", func(t *testing.T) {
		// RFC 6877: tayga maps 198.51.100.80 into the PREF64 of the
		// gizmo's RA, its own address from the ISP router's /64.
		var body string
		err := netlab.WaitFor(ctx, "HTTP through the CLAT", func(ctx context.Context) (bool, error) {
			c, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			b, err := netlab.HTTPGet(c, netlab.NSLanCLAT, "http://"+netlab.V4OnlyServer.String()+"/")
			body = b
			return err == nil, nil
		})
		if err != nil || !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
			t.Fatalf("gz-lan-clat fetching %s through tayga and the NAT64: %q, %v", netlab.V4OnlyServer, body, err)
		}
		synth := synthesized(t, pref64, netlab.V4OnlyServer)
		out, err := l.Exec(ctx, netlab.NSLanCLAT, "ip", "-6", "route", "get", synth.String())
		if err != nil || strings.Contains(string(out), " via ") || !strings.Contains(string(out), "dev "+netlab.HostIf) {
			t.Errorf("gz-lan-clat's route to %s: want on-link on %s: %s %v", synth, netlab.HostIf, out, err)
		}
	})

	t.Run("the delegation goes: the ULA /64 takes over, the old /64 is withdrawn", func(t *testing.T) {
		if err := l.SetDelegation(ctx, netlab.DelegationNoPool); err != nil {
			t.Fatal(err)
		}
		// Kea answers the Renews with NoPrefixAvail; the gizmo keeps the
		// prefix until its valid lifetime ends, then falls back.
		st := waitStatus(t, ctx, "the on-link NAT64 prefix in the ULA", func(s status) bool {
			return s.Delegated == nil && s.Pref64Source == "on-link" && strings.HasPrefix(s.Pref64, strings.TrimSuffix(s.ULA, "::/48"))
		})
		ulaLink, ulaPref64, ulaDNS := existingULAPrefixes(t, st)
		// RFC 4861 §6.3.4: the old /64 goes at once with lifetime 0,
		// though the host was told minutes.
		if _, err := l.WaitExec(testContext(t, 30*time.Second), netlab.NSLanV6, func(out string) bool {
			return !onLinkRoute(out, onLink) && onLinkRoute(out, ulaLink)
		}, "ip", "-6", "route", "show", "dev", netlab.HostIf); err != nil {
			t.Errorf("gz-lan-v6: want %s withdrawn and %s on-link: %v", onLink, ulaLink, err)
		}
		want := synthesized(t, ulaPref64, netlab.V4OnlyServer).String()
		body, err := fetchByName(ctx, l, netlab.NSLanV6, ulaDNS, "v4only.example.test")
		if err != nil || !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
			t.Errorf("gz-lan-v6 fetching v4only at %s: %q, %v", want, body, err)
		}
		onLink = ulaLink
	})

	t.Run("the final RA withdraws the on-link /64", func(t *testing.T) {
		if err := l.GizmoStop(); err != nil {
			t.Fatal(err)
		}
		// The lifetime last advertised is many minutes: only the final
		// RA's lifetime 0 removes the route this soon (RFC 4861 §6.3.4).
		stopped := testContext(t, 20*time.Second)
		if _, err := l.WaitExec(stopped, netlab.NSLanV6, func(out string) bool {
			return !onLinkRoute(out, onLink)
		}, "ip", "-6", "route", "show", "dev", netlab.HostIf); err != nil {
			t.Errorf("the on-link route stays after the gizmo stopped: %v", err)
		}
		if err := l.GizmoStart(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool {
			return onLinkRoute(out, onLink)
		}, "ip", "-6", "route", "show", "dev", netlab.HostIf); err != nil {
			t.Errorf("the on-link route is not back after the gizmo started again: %v", err)
		}
	})
}

// existingPrefixes checks the status's on-link layout: the first /64 of
// the delegation, the NAT64 prefix its first /96, the RDNSS address in the
// /64 outside the /96.
func existingPrefixes(t *testing.T, st status) (onLink, pref64 netip.Prefix, dns netip.Addr) {
	t.Helper()
	delegated, err := netip.ParsePrefix(st.Delegated.Prefix)
	if err != nil {
		t.Fatalf("delegated prefix %q: %v", st.Delegated.Prefix, err)
	}
	onLink = netip.PrefixFrom(delegated.Masked().Addr(), 64)
	pref64, dns = onLinkLayout(t, st, onLink)
	return onLink, pref64, dns
}

// existingULAPrefixes checks the status's on-link layout without a
// delegation: subnet 64 of the ULA, its first /96, the DNS64 outside it.
func existingULAPrefixes(t *testing.T, st status) (onLink, pref64 netip.Prefix, dns netip.Addr) {
	t.Helper()
	ula, err := netip.ParsePrefix(st.ULA)
	if err != nil || ula.Bits() != 48 {
		t.Fatalf("ULA %q: %v", st.ULA, err)
	}
	b := ula.Addr().As16()
	b[7] = 0x64
	onLink = netip.PrefixFrom(netip.AddrFrom16(b), 64)
	pref64, dns = onLinkLayout(t, st, onLink)
	return onLink, pref64, dns
}

// onLinkLayout checks that the status's NAT64 prefix is the first /96 of
// onLink and its RDNSS address in onLink outside that /96, and returns them.
func onLinkLayout(t *testing.T, st status, onLink netip.Prefix) (pref64 netip.Prefix, dns netip.Addr) {
	t.Helper()
	pref64, err := netip.ParsePrefix(st.Pref64)
	if err != nil || pref64 != netip.PrefixFrom(onLink.Addr(), 96) {
		t.Fatalf("PREF64 %q (%v): want the first /96 of %s", st.Pref64, err, onLink)
	}
	dns = rdnss(t, st)
	if !onLink.Contains(dns) || pref64.Contains(dns) {
		t.Fatalf("RDNSS %s: want it in %s, outside %s", dns, onLink, pref64)
	}
	return pref64, dns
}

// onLinkRoute reports whether `ip -6 route show dev eth0` has p as an
// on-link route (no gateway) from a PIO (with an expiry).
func onLinkRoute(routes string, p netip.Prefix) bool {
	for _, line := range strings.Split(routes, "\n") {
		if strings.HasPrefix(line, p.String()+" ") && !strings.Contains(line, " via ") && strings.Contains(line, "expires") {
			return true
		}
	}
	return false
}

// synthesized is v4 under the NAT64 prefix pref64 as the gizmo's DNS64
// writes it (RFC 6052 §2.2).
func synthesized(t testing.TB, pref64 netip.Prefix, v4 netip.Addr) netip.Addr {
	t.Helper()
	a, err := dns64.Embed(pref64, v4)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
