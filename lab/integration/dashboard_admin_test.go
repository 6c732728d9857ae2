package integration

// The household's admin on the dashboard, as the owner does it on a phone:
// Debian's chromium at a phone's size, driven by chromedp against the
// gizmo in the lab, logs in, renames a host, reserves its IPv4 address,
// exposes a port, switches DNS64 off, adds an inbound token rule, downloads
// a backup, changes a setting, restores the backup and then a broken file.
// The effects are checked where they land: the policy in the API, the
// host's new name in the gizmo's DNS, the rule next to the addresses it
// opens.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

// phone is the viewport of a phone (390 × 844 CSS pixels, touch).
func phone() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1), chromedp.EmulateMobile, chromedp.EmulatePortrait)
}

// restoreSettingsAtEnd puts the gizmo's settings back as they were when the
// test started, through the API, whatever the test changed.
func restoreSettingsAtEnd(t *testing.T, l *netlab.Lab) {
	t.Helper()
	// The gizmo may have just started: its dashboard listens once the LAN
	// has its addresses.
	var before []byte
	if err := netlab.WaitFor(testContext(t, 2*time.Minute), "the dashboard's API", func(ctx context.Context) (bool, error) {
		var err error
		before, err = l.DashboardAPI(ctx, http.MethodGet, "/api/settings", "")
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := l.DashboardAPI(ctx, http.MethodPut, "/api/settings", string(before)); err != nil {
			t.Errorf("restoring the settings the test found: %v", err)
		}
	})
}

// labHost is one host as GET /api/hosts tells it.
type labHost struct {
	MAC       string           `json:"mac"`
	Hostname  string           `json:"hostname"`
	IPv4Lease string           `json:"ipv4_lease"`
	Policy    state.HostPolicy `json:"policy"`
}

func labHosts(t *testing.T, ctx context.Context, l *netlab.Lab) map[string]labHost {
	t.Helper()
	var hosts []labHost
	if err := apiJSON(ctx, l, "/api/hosts", &hosts); err != nil {
		t.Fatal(err)
	}
	out := map[string]labHost{}
	for _, h := range hosts {
		out[h.MAC] = h
	}
	return out
}

// submitAndWait presses a form's button and waits for the page it leads to
// to show sel (a confirmation or an error, which the page before lacks).
// What the page shows instead is in the error.
func submitAndWait(ctx context.Context, button, sel string) error {
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(button))); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		return fmt.Errorf("waiting for %s: %w; the page shows: %.600s", sel, err, text)
	}
	return nil
}

// readPage reads a property (innerText, value) of the element sel in one
// script, and again for a few seconds while it is empty: right after a
// form was sent the browser may still be replacing the page, and a node
// found in one step can be gone in the next.
func readPage(ctx context.Context, sel, prop string) (string, error) {
	js := fmt.Sprintf(`document.querySelector(%q)?.[%q] ?? ""`, sel, prop)
	var text string
	var err error
	for range 20 {
		if text, err = chromedp.Run(ctx, chromedp.Evaluate[string](js)); err == nil && text != "" {
			return text, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return text, err
}

// typeInto replaces an input's text as a person does: clear it, then type.
func typeInto(sel, text string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if err := chromedp.Do(ctx, chromedp.Clear(chromedp.CSS(sel))); err != nil {
			return chromedp.Void{}, err
		}
		if text == "" {
			return chromedp.Void{}, nil
		}
		return chromedp.Void{}, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(sel), text))
	}
}

func TestDashboardAdminOnAPhone(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 5*time.Minute)
	restoreSettingsAtEnd(t, l)
	base := dashboardProxy(t)
	// The browser outlives the test's context; every step in it is
	// bounded by the test's deadline.
	b, cancel := context.WithDeadline(browser(t, ctx), mustDeadline(ctx))
	defer cancel()
	if err := chromedp.Do(b, phone()); err != nil {
		t.Fatal(err)
	}
	logIn(t, b, l, base)

	// The legacy host holds a lease: that is the address its new name
	// answers with, and an address no other host may reserve.
	var lease string
	if err := netlab.WaitFor(ctx, "the legacy host's DHCPv4 lease", func(ctx context.Context) (bool, error) {
		lease = labHosts(t, ctx, l)[netlab.MACLanLegacy].IPv4Lease
		return lease != "", nil
	}); err != nil {
		t.Fatal(err)
	}
	const reserved = "203.0.113.250"
	legacyPage := base + "/hosts/" + netlab.MACLanLegacy

	t.Run("rename, reserve, expose a port and switch DNS64 off on the host's page", func(t *testing.T) {
		if err := chromedp.Do(b,
			chromedp.Navigate(legacyPage),
			chromedp.WaitVisible(chromedp.CSS("form#policy")),
			typeInto("#hostname", "printer"),
			typeInto("#ipv4", reserved),
			typeInto("#exposed_ports", "tcp/631"),
			chromedp.Click(chromedp.CSS(`form#policy input[type=checkbox][name=dns64]`)),
		); err != nil {
			t.Fatal(err)
		}
		if err := submitAndWait(b, "form#policy button[type=submit]", "p.saved"); err != nil {
			t.Fatalf("saving the host's settings: %v", err)
		}
		p := labHosts(t, ctx, l)[netlab.MACLanLegacy].Policy
		if p.Hostname != "printer" || p.IPv4.String() != reserved || strings.Join(p.ExposedPorts, " ") != "tcp/631" || p.DNS64 {
			t.Errorf("policy after saving: %+v", p)
		}
		// The new name is in the gizmo's DNS at once, with the lease the
		// host holds (the reservation takes effect when it asks again).
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		waitAnswer(t, wctx, l, rdnssAddr(t, wctx, l), "printer.home.arpa", "A", []string{lease})
	})

	t.Run("a reservation of another host's address is refused, and the page says whose", func(t *testing.T) {
		before := labHosts(t, ctx, l)[netlab.MACLanV6].Policy
		if err := chromedp.Do(b,
			chromedp.Navigate(base+"/hosts/"+netlab.MACLanV6),
			chromedp.WaitVisible(chromedp.CSS("form#policy")),
			typeInto("#ipv4", lease),
		); err != nil {
			t.Fatal(err)
		}
		if err := submitAndWait(b, "form#policy button[type=submit]", "div.error"); err != nil {
			t.Fatalf("the refusal: %v", err)
		}
		msg, err := readPage(b, "div.error", "innerText")
		if err != nil || !strings.Contains(msg, "leased to printer ("+netlab.MACLanLegacy+") now") {
			t.Errorf("the page says %q (err %v), want the conflict with printer's lease", msg, err)
		}
		if typed, _ := readPage(b, "#ipv4", "value"); typed != lease {
			t.Errorf("the form lost what was typed: %q", typed)
		}
		if after := labHosts(t, ctx, l)[netlab.MACLanV6].Policy; after.IPv4.IsValid() || after.DNS64 != before.DNS64 {
			t.Errorf("the refused edit changed the policy to %+v", after)
		}
	})

	t.Run("an inbound token rule shows the addresses it opens", func(t *testing.T) {
		var st struct {
			Delegated struct {
				Prefix string `json:"prefix"`
			} `json:"delegated_prefix"`
		}
		if err := apiJSON(ctx, l, "/api/status", &st); err != nil || st.Delegated.Prefix == "" {
			t.Fatalf("no delegated prefix in /api/status: %+v %v", st, err)
		}
		if err := chromedp.Do(b,
			chromedp.Navigate(base+"/rules"),
			chromedp.WaitVisible(chromedp.CSS("form#addrule")),
			typeInto("#new-name", "web"),
			typeInto("#new-token", "::80"),
			typeInto("#new-ports", "tcp/80 tcp/443"),
		); err != nil {
			t.Fatal(err)
		}
		n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("article.rule").length`))
		if err != nil {
			t.Fatal(err)
		}
		sel := fmt.Sprintf("article.rule#r-%d", n+1)
		if err := submitAndWait(b, "form#addrule button[type=submit]", sel); err != nil {
			t.Fatalf("adding the rule: %v", err)
		}
		lan := netip.MustParsePrefix(st.Delegated.Prefix).Masked().Addr().As16()
		lan[15] = 0x80
		want := netip.PrefixFrom(netip.AddrFrom16(lan), 128).String()
		opens, err := readPage(b, sel+" td.opens", "textContent")
		if err != nil || !strings.Contains(opens, want) {
			t.Errorf("the rule opens %q (err %v), want %s among them", opens, err, want)
		}
	})

	dir := t.TempDir()
	var backup []byte
	t.Run("download a backup", func(t *testing.T) {
		if err := chromedp.Do(b,
			chromedp.Navigate(base+"/settings"),
			chromedp.WaitVisible(chromedp.CSS("a[href='/settings/backup']")),
			chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
					Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir,
				})
				return err
			}),
			chromedp.Click(chromedp.CSS("a[href='/settings/backup']")),
		); err != nil {
			t.Fatal(err)
		}
		if err := netlab.WaitFor(ctx, "the downloaded backup", func(context.Context) (bool, error) {
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err == nil && json.Valid(data) {
					backup = data
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			t.Fatal(err)
		}
		var f struct {
			Format       string                      `json:"format"`
			Version      int                         `json:"version"`
			Hosts        map[string]state.HostPolicy `json:"hosts"`
			InboundRules []state.InboundRule         `json:"inbound_rules"`
		}
		if err := json.Unmarshal(backup, &f); err != nil {
			t.Fatal(err)
		}
		if f.Format != "gizmo-settings" || f.Version != 1 || f.Hosts[netlab.MACLanLegacy].Hostname != "printer" || len(f.InboundRules) == 0 {
			t.Errorf("backup %s", backup)
		}
	})
	if backup == nil {
		t.Fatal("no backup to restore")
	}

	upload := func(t *testing.T, data []byte, wait string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "gizmo-settings.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(b,
			chromedp.Navigate(base+"/settings"),
			chromedp.WaitVisible(chromedp.CSS("form#restoreform")),
			chromedp.SetUploadFiles(chromedp.CSS("input#file"), []string{path}),
		); err != nil {
			t.Fatal(err)
		}
		if err := submitAndWait(b, "form#restoreform button[type=submit]", wait); err != nil {
			t.Fatalf("restoring: %v", err)
		}
		text, _ := readPage(b, wait, "innerText")
		return text
	}

	t.Run("restore the backup after a change", func(t *testing.T) {
		if _, err := l.DashboardAPI(ctx, http.MethodPut, "/api/hosts/"+netlab.MACLanLegacy+"/policy", `{"hostname":"renamed"}`); err != nil {
			t.Fatal(err)
		}
		if msg := upload(t, backup, "p.saved"); !strings.Contains(msg, "Restored") {
			t.Errorf("the page says %q", msg)
		}
		if p := labHosts(t, ctx, l)[netlab.MACLanLegacy].Policy; p.Hostname != "printer" || p.IPv4.String() != reserved {
			t.Errorf("after the restore: %+v", p)
		}
	})

	t.Run("a broken file changes nothing and the page says what is wrong", func(t *testing.T) {
		before, err := l.DashboardAPI(ctx, http.MethodGet, "/api/settings", "")
		if err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(string(backup), `"tcp/631"`, `"tcp/99999"`, 1)
		if broken == string(backup) {
			t.Fatal("the backup has no tcp/631 to break")
		}
		msg := upload(t, []byte(broken), "div.error")
		if !strings.Contains(msg, "Nothing was changed") || !strings.Contains(msg, "host "+netlab.MACLanLegacy+": exposed ports") {
			t.Errorf("the page says %q", msg)
		}
		after, err := l.DashboardAPI(ctx, http.MethodGet, "/api/settings", "")
		if err != nil {
			t.Fatal(err)
		}
		if withoutSaved(before) != withoutSaved(after) {
			t.Errorf("the broken file changed the settings:\n%s\nto\n%s", before, after)
		}
	})
}

func mustDeadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		panic("a test context without a deadline")
	}
	return d
}

// withoutSaved is a settings file without its "saved" time.
func withoutSaved(b []byte) string {
	var m map[string]any
	json.Unmarshal(b, &m)
	delete(m, "saved")
	out, _ := json.Marshal(m)
	return string(out)
}
