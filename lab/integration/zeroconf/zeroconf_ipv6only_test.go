package zeroconf

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/mdlayher/ndp"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/lab/netlab/netlabtest"
)

// lineStatus is the part of GET /api/status about the line.
type lineStatus struct {
	status
	Line string `json:"line"`
	CLAT *struct {
		Address string `json:"address"`
		Pref64  string `json:"pref64"`
	} `json:"clat"`
}

// waitLine polls /api/status until the gizmo names the line want and ok
// (if set) accepts the rest.
func waitLine(t *testing.T, ctx context.Context, want string, ok func(lineStatus) bool) lineStatus {
	t.Helper()
	return waitStatusAs(t, ctx, "line "+want, func(s lineStatus) bool { return s.Line == want && (ok == nil || ok(s)) })
}

// clientIn checks that an inet server's answer names a client in pool:
// the request went through the ISP's NAT64.
func clientIn(t *testing.T, who, body string, pool netip.Prefix) {
	t.Helper()
	if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
		t.Errorf("%s: v4only answered %q", who, body)
		return
	}
	_, c, _ := strings.Cut(strings.TrimSpace(body), " client=")
	if a, err := netip.ParseAddr(c); err != nil || !pool.Contains(a) {
		t.Errorf("%s: the server saw client %q, want an address of the ISP's NAT64 pool %s", who, c, pool)
	}
}

// RFC 6877 on an IPv6-only line whose ISP runs the NAT64: the IPv6-only
// host reaches the IPv4-only server by name through DNS64 and the ISP's
// NAT64, the legacy host by IPv4 literal through the gizmo's CLAT, and the
// dashboard names the line. The ISP announces its NAT64 by PREF64 in its
// RA (RFC 8781), or by DNS64 only, which RFC 7050 discovery finds.
func TestIPv6OnlyNAT64(t *testing.T) {
	for _, tc := range []struct{ scenario, source string }{
		{"ipv6-only-nat64", "upstream-ra"},
		{"ipv6-only-dns64", "upstream-dns64"},
	} {
		t.Run(tc.scenario, func(t *testing.T) { testIPv6OnlyNAT64(t, tc.scenario, tc.source) })
	}
}

func testIPv6OnlyNAT64(t *testing.T, scenario, source string) {
	l := upScenario(t, scenario)
	ctx := testContext(t, 3*time.Minute)
	st := waitLine(t, ctx, "ipv6-only-nat64", func(s lineStatus) bool { return s.CLAT != nil && s.Delegated != nil })
	if st.Pref64 != netlab.UpstreamPref64.String() || st.Pref64Source != source {
		t.Errorf("PREF64 %s (%s), want the ISP's %s (%s)", st.Pref64, st.Pref64Source, netlab.UpstreamPref64, source)
	}
	if st.WAN.IPv4 != "" {
		t.Errorf("a WAN IPv4 address %s on a line without IPv4", st.WAN.IPv4)
	}
	// RFC 6877 §6.3: the CLAT has the last /64 of the delegation.
	d := netip.MustParsePrefix(st.Delegated.Prefix)
	last := d.Addr().As16()
	for i := d.Bits(); i < 64; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	last[14], last[15] = 0x04, 0x64
	if st.CLAT.Address != netip.AddrFrom16(last).String() || st.CLAT.Pref64 != netlab.UpstreamPref64.String() {
		t.Errorf("CLAT %+v, want %s → %s", st.CLAT, netip.AddrFrom16(last), netlab.UpstreamPref64)
	}
	waitDeployment(t, ctx, l, "upstream-nat64")

	body, err := fetchByName(ctx, l, netlab.NSLanV6, rdnss(t, st.status), "v4only.example.test")
	if err != nil {
		t.Fatalf("gz-lan-v6 fetching v4only through DNS64 and the ISP's NAT64: %v", err)
	}
	clientIn(t, "gz-lan-v6", body, netlab.ISPNAT64Pool)

	body, err = l.WaitExec(ctx, netlab.NSLanLegacy, func(out string) bool { return strings.Contains(out, "server=") },
		"curl", "-sS", "--max-time", "3", "http://"+netlab.V4OnlyServer.String()+"/")
	if err != nil {
		t.Fatalf("gz-lan-legacy fetching %s through the gizmo's CLAT: %v", netlab.V4OnlyServer, err)
	}
	clientIn(t, "gz-lan-legacy", body, netlab.ISPNAT64Pool)
	if n := netlabtest.Metric(t, ctx, `gizmo_clat_packets_total{outcome="translated_out"}`); n == 0 {
		t.Errorf("the CLAT translated nothing out")
	}

	page, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/")
	if err != nil || !strings.Contains(page, "IPv6 only, with the ISP") || !strings.Contains(page, "CLAT "+st.CLAT.Address) {
		t.Errorf("the overview does not name the line and the CLAT (%v)", err)
	}
}

// No IPv4 anywhere (no WAN IPv4, no NAT64, no DNS64, no AFTR): the gizmo
// says so, stops synthesizing AAAA records, announces no PREF64, runs no
// CLAT, and tells every host that asks that it can do without IPv4 (RFC
// 8925), whatever its policy says.
func TestNoIPv4(t *testing.T) {
	l := upScenario(t, "ipv6-only")
	ctx := testContext(t, 3*time.Minute)
	st := waitLine(t, ctx, "ipv6-only", nil)
	if st.CLAT != nil {
		t.Errorf("a CLAT runs on a line without IPv4: %+v", st.CLAT)
	}
	dns := rdnss(t, st.status)

	// The name still resolves (A), but no AAAA is synthesized for it;
	// a name with a real AAAA keeps it.
	for _, q := range []struct{ name, typ, want string }{
		{"v4only.example.test", "A", netlab.V4OnlyServer.String()},
		{"v4only.example.test", "AAAA", ""},
		{"dual.example.test", "AAAA", netlab.DualServer6.String()},
	} {
		out, err := l.Exec(ctx, netlab.NSLanV6, "dig", "+short", "+time=2", "+tries=2", "@"+dns.String(), q.name, q.typ)
		if err != nil || strings.TrimSpace(string(out)) != q.want {
			t.Errorf("%s %s at the gizmo: %q (%v), want %q", q.name, q.typ, strings.TrimSpace(string(out)), err, q.want)
		}
	}

	ra, err := gizmoRA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pio bool
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.PREF64:
			t.Errorf("RFC 8781: the RA announces PREF64 %s on a line without NAT64", o.Prefix)
		case *ndp.PrefixInformation:
			pio = true
		}
	}
	if !pio {
		t.Errorf("the RA carries no prefix: %+v", ra)
	}

	// gz-lan-v6's policy says it wants IPv4; on this line it is told to
	// go without anyway.
	if _, err := l.DashboardAPI(ctx, "PUT", "/api/hosts/"+netlab.MACLanV6+"/policy", `{"v6only_preferred":false}`); err != nil {
		t.Fatal(err)
	}
	offer, err := netlab.WaitDHCPv4Offer(ctx, netlab.NSLanV6, netlab.HostIf, dhcpv4.OptionIPv6OnlyPreferred)
	if err != nil {
		t.Fatalf("DHCPDISCOVER with option 108 from gz-lan-v6: %v", err)
	}
	if _, ok := offer.IPv6OnlyPreferred(); !ok {
		t.Errorf("RFC 8925: no option 108 for a host that asked, on a line without IPv4: %s", offer.Summary())
	}

	page, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/")
	if err != nil || !strings.Contains(page, "This line has no IPv4") {
		t.Errorf("the overview does not say the line has no IPv4 (%v)", err)
	}
}

// gizmoRA solicits the gizmo's Router Advertisement from gz-lan-v6.
func gizmoRA(ctx context.Context) (*ndp.RouterAdvertisement, error) {
	var ra *ndp.RouterAdvertisement
	err := netlab.WithNDP(netlab.NSLanV6, netlab.HostIf, func(c *ndp.Conn, ifi *net.Interface, _ netip.Addr) error {
		rs := &ndp.RouterSolicitation{Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}}}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if err := c.WriteTo(rs, nil, netip.MustParseAddr("ff02::2")); err != nil {
				return err
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			for {
				m, _, from, err := c.ReadFrom()
				if err != nil {
					break
				}
				if r, ok := m.(*ndp.RouterAdvertisement); ok && from.WithZone("") == netlab.GizmoLANLinkLocal {
					ra = r
					return nil
				}
			}
		}
		return errors.New("no RA from the gizmo")
	})
	return ra, err
}
