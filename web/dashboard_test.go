package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
	"github.com/prometheus/client_golang/prometheus"
)

// withTraffic fills the fake backend with an hour of samples.
func withTraffic(b *fakeBackend) {
	mac := "02:00:00:00:00:10"
	now := time.Now()
	for i := 0; i <= 360; i++ {
		v := uint64(i)
		b.history.Add(series.Sample{
			At:    now.Add(time.Duration(i-360) * 10 * time.Second),
			Total: series.Categories{NativeIPv6: 9000 * v, NAT64DNS64: 700 * v, NAT64CLAT: 200 * v, NAT44: 100 * v},
			Hosts: map[string]series.Categories{mac: {NativeIPv6: 9000 * v, NAT64DNS64: 700 * v}},
			DNS:   series.DNS{A: 3 * v, AAAA: 5 * v, Synthesized: v},
		})
	}
	b.insights = Insights{
		DNS:      DNSInsights{Queries: 42, Synthesized: 7, TopLegacy: []NameCount{{"v4only.example.test.", 7}}, BySource: map[string]uint64{"rdnss": 42}},
		NAT64:    NAT64Insights{Running: true, Sessions: 12, Capacity: 65536, Translated: 999, Drops: map[string]uint64{"table_full": 1}},
		Hosts:    map[string]HostInsights{mac: {DNSSources: map[string]uint64{"rdnss": 42}, CLAT: true, TopLegacy: []NameCount{{"legacy.example.test.", 5}}, Traffic: series.Categories{NativeIPv6: 9000, NAT64DNS64: 700}}},
		Firewall: map[string]CounterValue{"ipv6-forwarded": {Packets: 10, Bytes: 1000}},
		Metrics: []prometheus.Metric{
			prometheus.MustNewConstMetric(prometheus.NewDesc("gizmo_ra_rs_received_total", "Router Solicitations received.", nil, nil), prometheus.CounterValue, 3),
			prometheus.MustNewConstMetric(prometheus.NewDesc("gizmo_dhcp4_leases", "Current DHCPv4 leases.", nil, nil), prometheus.GaugeValue, 2),
		},
	}
	b.st.Roles = state.RolesStatus{Detected: true, WANPort: "eth1", LANPorts: []string{"eth0", "eth2"},
		Since: now, Reason: "eth1 heard a router advertisement", Changes: 1}
}

func TestPagesRenderWithData(t *testing.T) {
	s, b := newTestServer(t)
	withTraffic(b)
	auth := func(r *http.Request) { r.SetBasicAuth("gizmo", "secret") }
	for _, tc := range []struct{ path, want string }{
		{"/", `<polygon fill="#2e7d32"`},
		{"/", "90.0%"}, // 9000 of 10000 bytes per step are native IPv6
		{"/", "WAN eth1, LAN eth0, eth2"},
		{"/", "eth1 heard a router advertisement"},
		{"/?range=1h", "2001:db8:64::/96"},
		{"/hosts", `action="/hosts/02:00:00:00:00:10/policy"`},
		{"/hosts", "rdnss (42)"},
		{"/hosts", "IPv4 literals via NAT64"},
		{"/hosts", `data-kind="clat"`},
		{"/hosts", "legacy.example.test. <small>(5)</small>"},
		{"/hosts", `<li data-category="nat64_dns64">`},
		{"/dns", "v4only.example.test."},
		{"/nat64", "12 of 65536"},
		{"/nat64", "table_full"},
		{"/metrics", `gizmo_nat64_sessions 12`},
		{"/metrics", "# TYPE gizmo_ra_rs_received_total counter\ngizmo_ra_rs_received_total 3"},
		{"/metrics", "# TYPE gizmo_dhcp4_leases gauge\ngizmo_dhcp4_leases 2"},
		{"/metrics", `gizmo_host_traffic_bytes_total{category="native_ipv6",mac="02:00:00:00:00:10"} 9000`},
		{"/api/series?resolution=10s", `"total":{"native_ipv6":9000,`},
		{"/static/style.css", "--acc"},
	} {
		w := do(t, s, "GET", tc.path, "", auth)
		if w.Code != 200 || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("GET %s: %d, want body containing %q; got:\n%.2000s", tc.path, w.Code, tc.want, w.Body)
		}
	}
	if w := do(t, s, "GET", "/api/series?resolution=2s", "", nil); w.Code != 400 {
		t.Errorf("bad resolution: %d", w.Code)
	}
}

// The brief: a page weighs under 150 KB gzipped, everything included; also
// with 500 hosts and 90 days of history.
func TestPageWeight(t *testing.T) {
	s, b := newTestServer(t)
	withTraffic(b)
	checkPageWeight(t, s, "02:00:00:00:00:10")
	if testing.Short() {
		return
	}
	big, err := New(Config{Backend: bigBackend(benchHosts, time.Now()), Password: "secret", Hostnames: []string{"gizmo.home.arpa"}, Listen: testListen, TLSDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checkPageWeight(t, big, benchMAC(1))
}

func checkPageWeight(t *testing.T, s *Server, host string) {
	// Logged in: the hosts page with every host's details is the heaviest.
	auth := func(r *http.Request) { r.SetBasicAuth("gizmo", "secret") }
	for _, path := range []string{"/", "/?range=90d", "/hosts", "/hosts/" + host, "/rules", "/settings", "/log", "/dns", "/nat64"} {
		w := do(t, s, "GET", path, "", auth)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d", path, w.Code)
		}
		body := w.Body.Bytes()
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		// Every page loads the stylesheet and the script.
		for _, f := range []string{"/static/style.css", "/static/local.js"} {
			zw.Write(do(t, s, "GET", f, "", nil).Body.Bytes())
		}
		zw.Close()
		if buf.Len() > 150*1024 {
			t.Errorf("%s weighs %d bytes gzipped with its stylesheet and script, over 150 KB", path, buf.Len())
		}
		t.Logf("%s: %d bytes, %d gzipped with CSS and script", path, len(body), buf.Len())
	}
}

// dns64OffForm is the host list's form with DNS64 unticked: each checkbox
// sends a hidden "off", and "on" after it when it is ticked.
const dns64OffForm = "dns64=off&v6only_preferred=off&v6only_preferred=on"

func TestFormToggle(t *testing.T) {
	form := url.Values{"dns64": {}, "v6only_preferred": {"on"}}.Encode()
	formReq := func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }
	s, b := newTestServer(t)
	w := do(t, s, "POST", "/hosts/02:00:00:00:00:10/policy", form, formReq)
	if w.Code != 401 || b.Snapshot().Hosts["02:00:00:00:00:10"].Policy.DNS64 == false {
		t.Fatalf("without password: %d, policy changed", w.Code)
	}
	w = do(t, s, "POST", "/hosts/02:00:00:00:00:10/policy", dns64OffForm, func(r *http.Request) {
		formReq(r)
		r.SetBasicAuth("gokrazy", "secret")
	})
	if w.Code != http.StatusSeeOther {
		body, _ := io.ReadAll(w.Body)
		t.Fatalf("with password: %d %s", w.Code, body)
	}
	p := b.Snapshot().Hosts["02:00:00:00:00:10"].Policy
	if p.DNS64 || !p.V6OnlyPreferred {
		t.Errorf("unchecked DNS64 box left policy %+v", p)
	}
	w = do(t, s, "POST", "/hosts/02:00:00:00:00:10/policy", "dns64=on&evil=1", func(r *http.Request) {
		formReq(r)
		r.SetBasicAuth("gokrazy", "secret")
	})
	if w.Code != 400 {
		t.Errorf("unknown form field: %d", w.Code)
	}
}

func TestHostKind(t *testing.T) {
	v6 := map[netip.Addr]time.Time{netip.MustParseAddr("2001:db8:1000:100::10"): {}}
	v4 := netip.MustParseAddr("203.0.113.150")
	for _, tc := range []struct {
		rule string
		host state.Host
		clat bool
		want string
	}{
		{"RFC 6877: NAT64 traffic to IPv4 literals means a CLAT", state.Host{Addrs: v6}, true, "clat"},
		{"RFC 8925: a host that honoured option 108 is IPv6-only", state.Host{Addrs: v6, GotV6OnlyPreferred: true}, false, "v6only"},
		{"a lease and IPv6 addresses make a dual-stack host", state.Host{Addrs: v6, IPv4Lease: v4}, false, "dual"},
		{"a lease and no IPv6 make a legacy host", state.Host{IPv4Lease: v4}, false, "legacy"},
		{"IPv6 addresses alone", state.Host{Addrs: v6}, false, "v6"},
		{"nothing seen yet", state.Host{}, false, "unknown"},
	} {
		if got := kindOf(&tc.host, tc.clat).Key; got != tc.want {
			t.Errorf("%s: kind %q, want %q", tc.rule, got, tc.want)
		}
	}
}

func TestDownsampleKeepsBytes(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var pts []series.Point
	var want uint64
	for i := range 1440 {
		if i == 700 {
			continue // a gap: the gizmo was down for a minute
		}
		pts = append(pts, series.Point{Start: t0.Add(time.Duration(i) * time.Minute), Total: series.Categories{NAT44: uint64(i)}})
		want += uint64(i)
	}
	out, step := downsample(pts, time.Minute, 360)
	if len(out) > 360 || step != 4*time.Minute {
		t.Fatalf("%d points of %v, want at most 360 of 4m", len(out), step)
	}
	var got uint64
	for i, p := range out {
		got += p.Total.NAT44
		if i > 0 && !p.Start.After(out[i-1].Start) {
			t.Fatalf("point %d at %v is not after %v", i, p.Start, out[i-1].Start)
		}
	}
	if got != want {
		t.Errorf("downsampled total %d, want %d", got, want)
	}
}

// The overview's clock row says whether the gizmo's time can be trusted,
// and /api/status carries the same account.
func TestClockLine(t *testing.T) {
	s, b := newTestServer(t)
	body := do(t, s, "GET", "/", "", nil).Body.String()
	if !strings.Contains(body, "not synchronised yet: times may be wrong") {
		t.Errorf("an unsynced clock is not called out on the overview:\n%.3000s", body)
	}
	b.st.Clock = state.Clock{Synced: true, Source: "192.0.2.1", LastSync: time.Date(2026, 3, 14, 15, 30, 0, 0, time.UTC)}
	body = do(t, s, "GET", "/", "", nil).Body.String()
	if !strings.Contains(body, "synchronised with NTP server 192.0.2.1, last <time") {
		t.Errorf("the synced clock's source and last sync are not on the overview:\n%.3000s", body)
	}
	w := do(t, s, "GET", "/api/status", "", nil)
	if !strings.Contains(w.Body.String(), `"clock":{"synced":true,"source":"192.0.2.1","last_sync":"2026-03-14T15:30:00Z"}`) {
		t.Errorf("status lacks the clock: %s", w.Body)
	}
}
