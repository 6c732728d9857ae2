package zeroconf

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// Issue 9, "NAT64 on an existing network": a one-port gizmo on a LAN whose
// router is the ISP's. Started without -wan/-lan, role detection finds one
// port and picks the existing-network mode: an RA with router lifetime 0
// (RFC 4861 §6.3.4: not a default router), a RIO for the NAT64 prefix
// (RFC 4191), PREF64 (RFC 8781) and RDNSS (RFC 8106) for its DNS64. A Linux
// client with accept_ra_rt_info_max_plen=128 learns the NAT64 route and
// keeps its default route via the real router.
func TestExistingNetwork(t *testing.T) {
	l := upScenario(t, "existing-network")
	ctx := testContext(t, 2*time.Minute)
	st := waitStatus(t, ctx, "the one-port roles", func(s status) bool {
		return s.WAN.Interface != "" && s.LAN.DNS["rdnss"] != ""
	})
	if st.WAN.Interface != st.LAN.Interface {
		t.Errorf("WAN %q and LAN %q: want the one port in both roles", st.WAN.Interface, st.LAN.Interface)
	}
	waitDeployment(t, ctx, l, "existing-network")
	gizmoLL := "fe80::ff:fe00:201" // EUI-64 of MACGizmoLAN, the one port
	ispLL := "fe80::ff:fe00:101"   // EUI-64 of MACISPWAN
	routes, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool {
		return strings.Contains(out, netlab.Pref64.String()+" via "+gizmoLL) && strings.Contains(out, "default via "+ispLL)
	}, "ip", "-6", "route", "show", "dev", netlab.HostIf)
	if err != nil {
		t.Fatalf("gz-lan-v6 routes: want %s via the gizmo (RIO) and the default via the ISP's router: %v", netlab.Pref64, err)
	}
	if strings.Contains(routes, "default via "+gizmoLL) {
		t.Errorf("the gizmo became a default router (router lifetime must be 0):\n%s", routes)
	}
	// The host keeps its address from the real router's prefix.
	if _, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, netlab.WANPrefix6); err != nil {
		t.Errorf("gz-lan-v6 has no address from the existing router's prefix: %v", err)
	}
	// RDNSS: the gizmo's DNS64 answers with the NAT64 prefix.
	dns := rdnss(t, st)
	want := synthesized(netlab.Pref64, netlab.V4OnlyServer)
	if _, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool {
		return strings.TrimSpace(out) == want.String()
	}, "dig", "+short", "+time=1", "+tries=1", "@"+dns.String(), "v4only.example.test", "AAAA"); err != nil {
		t.Errorf("DNS64 answer for v4only.example.test from %s: want %s: %v", dns, want, err)
	}
	// One-armed NAT64: in through the port, out of the same port to the
	// router's IPv4.
	t.Run("one-armed NAT64", func(t *testing.T) {
		body, err := fetchByName(ctx, l, netlab.NSLanV6, dns, "v4only.example.test")
		if err != nil {
			t.Fatalf("gz-lan-v6 fetching v4only through the one-armed NAT64: %v", err)
		}
		if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
			t.Errorf("v4only answered %q", body)
		}
	})
}

// synthesized is v4 embedded in a /96 NAT64 prefix (RFC 6052 §2.2).
func synthesized(pref64 netip.Prefix, v4 netip.Addr) netip.Addr {
	b := pref64.Addr().As16()
	a := v4.As4()
	copy(b[12:], a[:])
	return netip.AddrFrom16(b)
}
