package integration

// The dashboard in a real browser: Debian's chromium, driven by chromedp,
// looks at the gizmo's pages after the lab's hosts made traffic of every
// category: the overview's chart is not empty and its time axis is
// labelled, the overview says the internet works, the host list shows each
// lab host with its kind and traffic categories and never the gizmo's own
// ports, and switching DNS64 off for gz-lan-v6 with the page's own form
// empties that host's next AAAA answer for an IPv4-only name. With
// GIZMO_SCREENSHOTS=DIR it also photographs every page at desktop and phone
// width into DIR (relative to the repository; 1 means docs/img).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/lab/netlab/netlabtest"
	"codeberg.org/monostack/gizmo/web/series"
)

// dashboardProxy serves the gizmo's dashboard on 127.0.0.1 of the host for
// the browser, which runs outside the lab's namespaces: every connection is
// passed on, TLS and all, from inside gz-gizmo to the gizmo's legacy LAN
// address, port 443 (where the daemon serves HTTPS). The browser sees the
// gizmo's own certificate, and its Host header (an IP literal) reaches the
// gizmo unchanged, so the DNS rebinding and cross-origin checks see what a
// LAN browser would send.
func dashboardProxy(t *testing.T) string {
	t.Helper()
	target := netip.AddrPortFrom(netlab.GizmoLANIPv4.Addr(), 443).String()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { netlab.ForwardTCP(ctx, ln, netlab.NSGizmo, target); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "https://" + ln.Addr().String()
}

// browser starts a headless chromium for the test, installing it first
// when it can, or skips naming the package.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	depstest.Require(t, deps.Browser)
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Chromium would otherwise phone home (updates, sync, field
		// trials), which the lab's sandbox refuses and logs.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("no-proxy-server", true),
		// The gizmo's certificate is self-signed, made on its first
		// boot; the lab's tests pin its key elsewhere (DashboardClient).
		chromedp.Flag("ignore-certificate-errors", true),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(ctx), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first Run starts the browser; it lives as long as bctx.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return bctx
}

// apiJSON fetches a dashboard API path from inside gz-gizmo, logged in
// (per-host insights need it).
func apiJSON(ctx context.Context, l *netlab.Lab, path string, v any) error {
	body, err := l.DashboardAPI(ctx, http.MethodGet, path, "")
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// driveTraffic makes traffic of every category in the lab: native IPv6 and
// NAT64-via-DNS64 from gz-lan-v6, NAT44 from gz-lan-legacy and
// NAT64-from-a-CLAT from gz-lan-clat. It then waits until the gizmo's
// sampler (every 10 s) has put each host's bytes into the insights and the
// history. A NAT64 path that does not work is an error, but the pages are
// still checked with the traffic that did get through.
func driveTraffic(t *testing.T, ctx context.Context, l *netlab.Lab) {
	t.Helper()
	rdnss := rdnssAddr(t, ctx, l)
	v4only := labPref64(t, netlab.V4OnlyServer.String())
	waitAnswer(t, ctx, l, rdnss, "v4only.example.test", "AAAA", []string{v4only.String()})
	fetch := func(ns, url string, within time.Duration) error {
		// The legacy host may still wait for its lease, and the NAT64 for
		// the gizmo's WAN lease: retry until the fetch goes through.
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		return netlab.WaitFor(wctx, "GET "+url+" from "+ns, func(ctx context.Context) (bool, error) {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := netlab.HTTPGet(c, ns, url)
			return err == nil, nil
		})
	}
	for _, f := range []struct{ ns, url string }{
		{netlab.NSLanV6, fmt.Sprintf("http://[%s]/bytes/400000", netlab.DualServer6)},
		{netlab.NSLanLegacy, fmt.Sprintf("http://%s/bytes/150000", netlab.V4OnlyServer)},
	} {
		if err := fetch(f.ns, f.url, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	hosts := []string{netlab.MACLanV6, netlab.MACLanLegacy}
	for _, f := range []struct{ ns, url, mac string }{
		{netlab.NSLanV6, fmt.Sprintf("http://[%s]/bytes/100000", v4only), ""},
		{netlab.NSLanCLAT, fmt.Sprintf("http://%s/bytes/50000", netlab.V4OnlyServer), netlab.MACLanCLAT},
	} {
		if err := fetch(f.ns, f.url, 45*time.Second); err != nil {
			t.Errorf("NAT64 path broken, its categories will be missing: %v", err)
		} else if f.mac != "" {
			hosts = append(hosts, f.mac)
		}
	}
	// Wait until every host's bytes are in the insights and the history
	// holds traffic; which category each host's bytes land in is for the
	// host-list test to check.
	var last map[string]series.Categories
	err := netlab.WaitFor(ctx, "the sampler to record every host's traffic", func(ctx context.Context) (bool, error) {
		var ins struct {
			Hosts map[string]struct {
				Traffic series.Categories `json:"traffic"`
			} `json:"hosts"`
		}
		var pts []series.Point
		if apiJSON(ctx, l, "/api/insights", &ins) != nil || apiJSON(ctx, l, "/api/series?resolution=10s", &pts) != nil {
			return false, nil
		}
		last = map[string]series.Categories{}
		for mac, h := range ins.Hosts {
			last[mac] = h.Traffic
		}
		for _, mac := range hosts {
			if last[mac].Total() == 0 {
				return false, nil
			}
		}
		return slices.ContainsFunc(pts, func(p series.Point) bool { return p.Total.NAT44 > 0 && p.Total.NativeIPv6 > 0 }), nil
	})
	if err != nil {
		t.Fatalf("%v; per-host traffic last seen: %+v", err, last)
	}
	t.Logf("per-host traffic: %+v", last)
}

// chartArea is the summed area (shoelace formula) of the polygons in the
// page's first chart, in SVG units.
const chartArea = `(() => {
	const svg = document.querySelector('svg.chart');
	if (!svg) return -1;
	let sum = 0;
	for (const poly of svg.querySelectorAll('polygon')) {
		const pts = poly.points;
		let a = 0;
		for (let i = 0; i < pts.numberOfItems; i++) {
			const p = pts.getItem(i), q = pts.getItem((i + 1) % pts.numberOfItems);
			a += p.x * q.y - q.x * p.y;
		}
		sum += Math.abs(a) / 2;
	}
	return sum;
})()`

// hostCards reads each host card's kind and traffic categories.
const hostCards = `Object.fromEntries([...document.querySelectorAll('article.host')].map(a => [a.dataset.mac, {
	kind: a.dataset.kind,
	categories: [...a.querySelectorAll('[data-category]')].map(e => e.dataset.category),
	dns64: a.querySelector('input[type=checkbox][name=dns64]').checked,
}]))`

type hostCard struct {
	Kind       string   `json:"kind"`
	Categories []string `json:"categories"`
	DNS64      bool     `json:"dns64"`
}

func readHostCards(ctx context.Context, base string) (map[string]hostCard, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/hosts"), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
		return nil, err
	}
	return chromedp.Run(ctx, chromedp.Evaluate[map[string]hostCard](hostCards))
}

// logIn logs the browser in with the login form, as the owner does, with
// the appliance password from the gizmo's state dir.
func logIn(t *testing.T, b context.Context, l *netlab.Lab, base string) {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(stateDirOf(t, l), "password.txt"))
	if err != nil {
		t.Fatalf("appliance password: %v", err)
	}
	ctx, cancel := context.WithTimeout(b, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("input[name=password]")),
		chromedp.SendKeys(chromedp.CSS("input[name=password]"), strings.TrimSpace(string(pw))),
		chromedp.Click(chromedp.CSS("form.login button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("form.account")), // the logout button
	); err != nil {
		t.Fatalf("logging in: %v", err)
	}
}

func TestDashboardInBrowser(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 4*time.Minute)
	driveTraffic(t, ctx, l)
	base := dashboardProxy(t)
	b := browser(t, ctx)

	t.Run("logging in leaves a Secure, HttpOnly, SameSite=Strict session cookie", func(t *testing.T) {
		logIn(t, b, l, base)
		var cookies []*network.Cookie
		if err := chromedp.Do(b, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
			if err == nil {
				cookies = res.Cookies
			}
			return err
		})); err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, c := range cookies {
			if c.Name == "gizmo_session" {
				found = true
				if !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
					t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict", c)
				}
			}
		}
		if !found {
			t.Fatalf("no gizmo_session cookie after logging in: %+v", cookies)
		}
	})

	t.Run("the overview shows non-empty charts", func(t *testing.T) {
		for _, path := range []string{"/", "/?range=1h"} {
			if err := chromedp.Do(b, chromedp.Navigate(base+path), chromedp.WaitReady(chromedp.CSS("svg.chart"))); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			area, err := chromedp.Run(b, chromedp.Evaluate[float64](chartArea))
			if err != nil || area <= 0 {
				t.Errorf("%s: chart polygons' area %v (err %v), want > 0", path, area, err)
			}
			headline, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(".share .pct")))
			if err != nil || !strings.HasSuffix(headline, "%") {
				t.Errorf("%s: headline %q (err %v), want a percentage of native IPv6", path, headline, err)
			}
		}
	})

	t.Run("the overview says the internet works, and how many hosts still need IPv4", func(t *testing.T) {
		if err := chromedp.Do(b, chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS("section.internet"))); err != nil {
			t.Fatal(err)
		}
		key, err := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("section.internet").dataset.key`))
		line, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("section.internet")))
		if err != nil || key != "ok" || !strings.Contains(line, "OK: IPv6 and IPv4 via NAT64") {
			t.Errorf("internet line %q (key %q, err %v), want OK: IPv6 and IPv4 via NAT64", line, key, err)
		}
		// The legacy host (a lease, no IPv6), the CLAT host and gz-lan-v6
		// (NAT64 for v4only.example.test) all still need IPv4.
		need, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("p.needline")))
		if err != nil || !strings.HasPrefix(need, "3 of ") {
			t.Errorf("IPv4 summary %q (err %v), want 3 of the hosts", need, err)
		}
		labels, err := chromedp.Run(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll("figcaption.axis time")].map(e => e.getAttribute("datetime"))`))
		if err != nil || len(labels) < 3 {
			t.Errorf("the chart's time axis has labels %v (err %v), want several", labels, err)
		}
		for _, l := range labels {
			if at, err := time.Parse(time.RFC3339, l); err != nil || at.Minute()%15 != 0 || at.Second() != 0 {
				t.Errorf("axis label at %q, not a round time", l)
			}
		}
	})

	t.Run("the gizmo's own ports are no hosts", func(t *testing.T) {
		out, err := l.Exec(ctx, netlab.NSGizmo, "ip", "-j", "link", "show")
		if err != nil {
			t.Fatal(err)
		}
		var links []struct {
			Name    string `json:"ifname"`
			Address string `json:"address"`
		}
		if err := json.Unmarshal(out, &links); err != nil {
			t.Fatal(err)
		}
		hosts := labHosts(t, ctx, l)
		for _, ln := range links {
			if _, ok := hosts[ln.Address]; ok {
				t.Errorf("the gizmo's %s (%s) is listed as a host", ln.Name, ln.Address)
			}
		}
		cards, err := readHostCards(b, base)
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range links {
			if _, ok := cards[ln.Address]; ok {
				t.Errorf("the host list has a card for the gizmo's %s (%s)", ln.Name, ln.Address)
			}
		}
	})

	t.Run("the host list shows the lab's hosts with the right categories", func(t *testing.T) {
		cards, err := readHostCards(b, base)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			host, mac, kind string
			categories      []string
		}{
			{"gz-lan-v6 (option 108, DNS64)", netlab.MACLanV6, "v6only", []string{"native_ipv6", "nat64_dns64"}},
			{"gz-lan-legacy (IPv4 only)", netlab.MACLanLegacy, "legacy", []string{"nat44"}},
			{"gz-lan-clat (464XLAT)", netlab.MACLanCLAT, "clat", []string{"nat64_clat"}},
		} {
			got, ok := cards[want.mac]
			if !ok {
				t.Errorf("%s: no card for %s; cards: %+v", want.host, want.mac, cards)
				continue
			}
			if got.Kind != want.kind {
				t.Errorf("%s: kind %q, want %q", want.host, got.Kind, want.kind)
			}
			for _, c := range want.categories {
				if !slices.Contains(got.Categories, c) {
					t.Errorf("%s: traffic categories %v, want %s among them", want.host, got.Categories, c)
				}
			}
		}
		if c := cards[netlab.MACLanLegacy].Categories; slices.Contains(c, "native_ipv6") || slices.Contains(c, "nat64_dns64") {
			t.Errorf("the legacy host (IPv6 disabled) shows IPv6 categories: %v", c)
		}
	})

	t.Run("switching DNS64 off in the browser empties the next AAAA", func(t *testing.T) {
		rdnss := rdnssAddr(t, ctx, l)
		v4only := labPref64(t, netlab.V4OnlyServer.String()).String()
		waitAnswer(t, ctx, l, rdnss, "v4only.example.test", "AAAA", []string{v4only})
		t.Cleanup(func() { setDNS64(t, context.Background(), l, netlab.MACLanV6, true) })

		card := chromedp.CSS(fmt.Sprintf(`article[data-mac=%q]`, netlab.MACLanV6))
		cards, err := readHostCards(b, base)
		if err != nil {
			t.Fatal(err)
		}
		if !cards[netlab.MACLanV6].DNS64 {
			t.Fatalf("DNS64 box of gz-lan-v6 is not checked before the change: %+v", cards[netlab.MACLanV6])
		}
		// Untick and save, as a person would: a plain form post.
		if err := chromedp.Do(b,
			chromedp.Click(card+" input[type=checkbox][name=dns64]"),
			chromedp.Click(card+" button[type=submit]"),
		); err != nil {
			t.Fatal(err)
		}
		// The form answers 303 to /hosts#h-<mac>.
		if err := netlab.WaitFor(ctx, "the form's redirect back to the host list", func(ctx context.Context) (bool, error) {
			loc, err := chromedp.Run(b, chromedp.Location())
			return err == nil && strings.HasSuffix(loc, "#h-"+netlab.MACLanV6), nil
		}); err != nil {
			t.Fatal(err)
		}
		cards, err = readHostCards(b, base)
		if err != nil {
			t.Fatal(err)
		}
		if cards[netlab.MACLanV6].DNS64 {
			t.Fatalf("after saving, the page still shows DNS64 on for gz-lan-v6")
		}
		waitAnswer(t, ctx, l, rdnss, "v4only.example.test", "AAAA", nil)
	})
}

// TestDashboardPlainHTTPIsReadOnly is the attack from a LAN host: a policy
// write over plain HTTP with the right password is refused, and changes
// nothing; the same write over HTTPS goes through.
func TestDashboardPlainHTTPIsReadOnly(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	pw, err := l.GizmoPassword()
	if err != nil {
		t.Fatal(err)
	}
	// The DNS64 switch of the legacy host: it asks for A records only, so
	// the switch changes nothing that other tests see.
	path := "/api/hosts/" + netlab.MACLanLegacy + "/policy"
	gizmo := netlab.GizmoLANIPv4.Addr().String()
	// The attacker writes from gz-lan-legacy's DHCPv4 lease, which a lab
	// just brought up may not have yet.
	hostIPv4(t, ctx, l, netlab.NSLanLegacy)
	secure, err := l.DashboardClient(netlab.NSLanLegacy)
	if err != nil {
		t.Fatal(err)
	}
	put := func(c *http.Client, url, body string) (int, string) {
		t.Helper()
		code, msg, err := netlab.AsOwner(ctx, c, http.MethodPut, url, pw, body)
		if err != nil {
			t.Fatal(err)
		}
		return code, strings.TrimSpace(string(msg))
	}
	dns64 := func() bool {
		t.Helper()
		var p struct {
			DNS64 bool `json:"dns64"`
		}
		if err := apiJSON(ctx, l, path, &p); err != nil {
			t.Fatal(err)
		}
		return p.DNS64
	}
	t.Cleanup(func() { put(secure, "https://"+gizmo+path, `{"dns64":true}`) })
	if code, msg := put(secure, "https://"+gizmo+path, `{"dns64":true}`); code != http.StatusOK {
		t.Fatalf("HTTPS PUT with the password: %d %q", code, msg)
	}
	refusedWrites := func() float64 {
		t.Helper()
		return netlabtest.Metric(t, ctx, "gizmo_web_plain_http_writes_refused_total")
	}
	before := refusedWrites()
	code, msg := put(netlab.HTTPClient(netlab.NSLanLegacy), "http://"+gizmo+path, `{"dns64":false}`)
	if code != http.StatusForbidden || !strings.Contains(msg, "https://"+gizmo+"/") {
		t.Errorf("plain-HTTP PUT with the right password: %d %q, want 403 pointing to HTTPS", code, msg)
	}
	if !dns64() {
		t.Error("the plain-HTTP write changed the policy")
	}
	if code, msg := put(secure, "https://"+gizmo+path, `{"dns64":false}`); code != http.StatusOK || dns64() {
		t.Errorf("HTTPS PUT with the password: %d %q", code, msg)
	}
	if after := refusedWrites(); after != before+1 {
		t.Errorf("gizmo_web_plain_http_writes_refused_total went from %v to %v, want one more", before, after)
	}
}

// stateDirOf reads the gizmo's state dir from its command line.
func stateDirOf(t *testing.T, l *netlab.Lab) string {
	t.Helper()
	argv := l.GizmoArgv()
	if i := slices.Index(argv, "-state-dir"); i >= 0 && i+1 < len(argv) {
		return argv[i+1]
	}
	t.Fatalf("no -state-dir in the gizmo's command line %q", argv)
	return ""
}
