package integration

// The dashboard's pictures in the README and docs/dashboard.md, taken from
// the gizmo in the lab with real traffic.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// screenshotDir is where GIZMO_SCREENSHOTS asks for the pictures: a
// directory relative to the repository's root ("1": docs/img), or "".
func screenshotDir(t *testing.T) string {
	v := os.Getenv("GIZMO_SCREENSHOTS")
	switch {
	case v == "":
		return ""
	case v == "1":
		v = filepath.Join("docs", "img")
	}
	if filepath.IsAbs(v) {
		return v
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the repository's root %s has no go.mod: %v", root, err)
	}
	return filepath.Join(root, v)
}

// TestDashboardScreenshots photographs every page at desktop and phone width
// with the lab's real data, logged in, into GIZMO_SCREENSHOTS (the README's
// and docs/dashboard.md's pictures: GIZMO_SCREENSHOTS=docs/img).
func TestDashboardScreenshots(t *testing.T) {
	dir := screenshotDir(t)
	if dir == "" {
		t.Skip("writes dashboard-*.png: set GIZMO_SCREENSHOTS=docs/img")
	}
	l := LabWithGizmo(t)
	ctx := testContext(t, 5*time.Minute)
	restoreSettingsAtEnd(t, l)
	// What a household would have set: names, a reservation, an exposed
	// port and a rule, so that the admin pages show something.
	for _, edit := range []struct{ method, path, body string }{
		{http.MethodPut, "/api/hosts/" + netlab.MACLanLegacy + "/policy", `{"hostname":"printer","ipv4":"203.0.113.250"}`},
		{http.MethodPut, "/api/hosts/" + netlab.MACLanV6 + "/policy", `{"hostname":"laptop","exposed_ports":["tcp/22"]}`},
		{http.MethodPut, "/api/hosts/" + netlab.MACLanCLAT + "/policy", `{"hostname":"phone"}`},
		{http.MethodPut, "/api/firewall/rules", `[{"name":"web server","token":"::80","ports":["tcp/80","tcp/443"]}]`},
	} {
		if _, err := l.DashboardAPI(ctx, edit.method, edit.path, edit.body); err != nil {
			t.Fatal(err)
		}
	}
	driveTraffic(t, ctx, l)
	base := dashboardProxy(t)
	b := browser(t, ctx)
	logIn(t, b, l, base)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}} {
		for _, page := range []struct{ name, path string }{
			{"overview", "/?range=1h"}, {"hosts", "/hosts"}, {"host", "/hosts/" + netlab.MACLanV6 + "?range=1h"},
			{"rules", "/rules"}, {"settings", "/settings"}, {"dns", "/dns?range=1h"}, {"nat64", "/nat64"},
		} {
			opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
			if size.mobile {
				opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
			}
			if err := chromedp.Do(b, chromedp.EmulateViewport(size.width, size.height, opts...),
				chromedp.Navigate(base+page.path), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
				t.Fatalf("%s at %s: %v", page.name, size.name, err)
			}
			png, err := chromedp.Run(b, chromedp.FullScreenshot(100)) // quality 100: PNG
			if err != nil {
				t.Fatalf("%s at %s: %v", page.name, size.name, err)
			}
			out := filepath.Join(dir, fmt.Sprintf("dashboard-%s-%s.png", page.name, size.name))
			if err := os.WriteFile(out, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", out, len(png))
		}
	}
}
