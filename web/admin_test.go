package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/logring"
)

var adminAuth = basicAuth("secret")

func TestAdminPagesNeedALogin(t *testing.T) {
	s, _ := newTestServer(t)
	for _, path := range []string{"/hosts/" + testMAC, "/rules", "/settings", "/log"} {
		w := do(t, s, "GET", path, "", nil)
		if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || loc != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without a login: %d to %q, want 303 to the login page and back", path, w.Code, loc)
		}
		w = doPlain(t, s, "GET", path, "", nil)
		if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "https://gizmo.home.arpa/login?next=") {
			t.Errorf("GET %s over plain HTTP: %d to %q, want the HTTPS login", path, w.Code, loc)
		}
		if w := do(t, s, "GET", path, "", adminAuth); w.Code != http.StatusOK {
			t.Errorf("GET %s logged in: %d %.300s", path, w.Code, w.Body)
		}
	}
	for _, path := range []string{"/settings/backup", "/api/settings"} {
		if w := do(t, s, "GET", path, "", nil); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without a login: %d", path, w.Code)
		}
	}
}

func TestPolicyFromForm(t *testing.T) {
	cur := state.HostPolicy{DNS64: true, V6OnlyPreferred: true, Hostname: "nas", IPv4: netip.MustParseAddr("203.0.113.140"), ExposedPorts: []string{"tcp/22"}}
	for _, tc := range []struct {
		rule    string
		form    string
		want    state.HostPolicy
		wantErr string
	}{
		{"a field left out keeps its value", "", cur, ""},
		{"a ticked box sends off, then on", "dns64=off&dns64=on&app_pinholes=off&app_pinholes=on", withPolicy(cur, func(p *state.HostPolicy) { p.AppPinholes = true }), ""},
		{"an unticked box sends only its hidden off", "dns64=off", withPolicy(cur, func(p *state.HostPolicy) { p.DNS64 = false }), ""},
		{"an empty name falls back to the announced one", "hostname=", withPolicy(cur, func(p *state.HostPolicy) { p.Hostname = "" }), ""},
		{"a name is trimmed", "hostname=+printer+", withPolicy(cur, func(p *state.HostPolicy) { p.Hostname = "printer" }), ""},
		{"RFC 1123 §2.1: no underscore in a name", "hostname=my_nas", cur, "Name:"},
		{"an empty reservation is none", "ipv4=", withPolicy(cur, func(p *state.HostPolicy) { p.IPv4 = netip.Addr{} }), ""},
		{"a reservation", "ipv4=203.0.113.150", withPolicy(cur, func(p *state.HostPolicy) { p.IPv4 = netip.MustParseAddr("203.0.113.150") }), ""},
		{"an IPv6 address is no reservation", "ipv4=2001:db8::1", cur, "not an IPv4 address"},
		{"ports by spaces or commas, in lower case", "exposed_ports=TCP/443,+udp/51820++tcp/80", withPolicy(cur, func(p *state.HostPolicy) { p.ExposedPorts = []string{"tcp/443", "udp/51820", "tcp/80"} }), ""},
		{"no ports", "exposed_ports=+", withPolicy(cur, func(p *state.HostPolicy) { p.ExposedPorts = nil }), ""},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.form)
			got, shown, errs := policyFromForm(v, cur)
			if tc.wantErr != "" {
				if len(errs) != 1 || !strings.Contains(errs[0], tc.wantErr) {
					t.Fatalf("errors %q, want one with %q", errs, tc.wantErr)
				}
				if f := v.Get("hostname") + v.Get("ipv4"); !strings.Contains(shown.Hostname+shown.IPv4, f) {
					t.Errorf("the form shows %+v, not what was typed (%q)", shown, f)
				}
				return
			}
			if len(errs) != 0 || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("policy %+v, errors %q; want %+v", got, errs, tc.want)
			}
		})
	}
}

func withPolicy(p state.HostPolicy, f func(*state.HostPolicy)) state.HostPolicy {
	p.ExposedPorts = append([]string(nil), p.ExposedPorts...)
	f(&p)
	return p
}

// The host page's form saves every field at once; a refused edit shows the
// page again with what was typed and why, and changes nothing.
func TestHostPageForm(t *testing.T) {
	s, b := newTestServer(t)
	b.findings.PoolStart, b.findings.PoolEnd = netip.MustParseAddr("203.0.113.130"), netip.MustParseAddr("203.0.113.254")
	w := do(t, s, "GET", "/hosts/"+testMAC, "", adminAuth)
	for _, want := range []string{`action="/hosts/02:00:00:00:00:10/policy"`, "From the legacy pool 203.0.113.130 – 203.0.113.254", `name="app_pinholes" value="on"`, "let apps on this host open inbound IPv6 ports (UPnP)",
		`name="lan_reachable" value="on" checked`, "Reachable from IPv6-only hosts"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("host page lacks %q", want)
		}
	}
	form := url.Values{"from": {"host"}, "hostname": {"nas"}, "ipv4": {"203.0.113.140"}, "exposed_ports": {"tcp/443 udp/51820"},
		"dns64": {"off"}, "v6only_preferred": {"off", "on"}, "app_pinholes": {"off", "on"}, "lan_reachable": {"off"}}
	w = do(t, s, "POST", "/hosts/"+testMAC+"/policy", form.Encode(), both(formBody, adminAuth))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/hosts/"+testMAC+"?saved=1#settings" {
		t.Fatalf("save: %d to %q: %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	want := state.HostPolicy{V6OnlyPreferred: true, AppPinholes: true, Hostname: "nas", IPv4: netip.MustParseAddr("203.0.113.140"), ExposedPorts: []string{"tcp/443", "udp/51820"}}
	if got := b.Snapshot().Hosts[testMAC].Policy; !reflect.DeepEqual(got, want) {
		t.Errorf("saved %+v, want %+v", got, want)
	}
	if w := do(t, s, "GET", "/hosts/"+testMAC+"?saved=1", "", adminAuth); !strings.Contains(w.Body.String(), "Saved.") {
		t.Errorf("no confirmation after saving")
	}

	// The backend refuses a conflict: the page says why, keeps what was
	// typed, and the policy stays.
	b.refusePolicy = fmt.Errorf("%w: reservation 203.0.113.150 is leased to printer (02:00:00:00:00:20) now", ErrInvalid)
	form.Set("ipv4", "203.0.113.150")
	w = do(t, s, "POST", "/hosts/"+testMAC+"/policy", form.Encode(), both(formBody, adminAuth))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "leased to printer (02:00:00:00:00:20) now") ||
		!strings.Contains(w.Body.String(), `value="203.0.113.150"`) || !strings.Contains(w.Body.String(), "Not saved") {
		t.Errorf("refused edit: %d %.3000s", w.Code, w.Body)
	}
	if got := b.Snapshot().Hosts[testMAC].Policy; !reflect.DeepEqual(got, want) {
		t.Errorf("a refused edit changed the policy to %+v", got)
	}
	if w := do(t, s, "GET", "/hosts/02:00:00:00:00:99", "", adminAuth); w.Code != http.StatusNotFound {
		t.Errorf("unknown host's page: %d", w.Code)
	}
}

func TestRulesForms(t *testing.T) {
	s, b := newTestServer(t)
	// The version the page shows, as a browser sends it back.
	revRE := regexp.MustCompile(`name="rev" value="([0-9a-f]+)"`)
	rev := func() string {
		m := revRE.FindStringSubmatch(do(t, s, "GET", "/rules", "", adminAuth).Body.String())
		if m == nil {
			t.Fatal("the rules page carries no version")
		}
		return m[1]
	}
	post := func(path string, v url.Values) *httptest.ResponseRecorder {
		return do(t, s, "POST", path, v.Encode(), both(formBody, adminAuth))
	}
	w := post("/rules", url.Values{"rev": {rev()}, "name": {"web"}, "kind": {"token"}, "token": {"::80"}, "ports": {"tcp/80, TCP/443"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	w = post("/rules", url.Values{"rev": {rev()}, "name": {"servers"}, "kind": {"subnet"}, "index": {"16"}, "bits": {"64"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("add subnet: %d %s", w.Code, w.Body)
	}
	want := []state.InboundRule{
		{Name: "web", Token: netip.MustParseAddr("::80"), Ports: []string{"tcp/80", "tcp/443"}},
		{Name: "servers", Subnet: &state.Subnet{Index: 16, Bits: 64}},
	}
	if got := b.InboundRules(); !reflect.DeepEqual(got, want) {
		t.Fatalf("rules %+v, want %+v", got, want)
	}
	page := do(t, s, "GET", "/rules", "", adminAuth).Body.String()
	for _, s := range []string{`action="/rules/1"`, `action="/rules/2/delete"`, "token <code>::80</code> · tcp/80, tcp/443", "subnet 16 of /64", "the fake matches nothing"} {
		if !strings.Contains(page, s) {
			t.Errorf("rules page lacks %q", s)
		}
	}
	// A page that shows an older version changes nothing.
	old := rev()
	if w := post("/rules/1", url.Values{"rev": {old}, "name": {"www"}, "kind": {"token"}, "token": {"::80"}, "ports": {"tcp/443"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", w.Code, w.Body)
	}
	if w := post("/rules/2/delete", url.Values{"rev": {old}}); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "changed in the meantime") {
		t.Errorf("delete with a stale version: %d", w.Code)
	}
	if got := b.InboundRules(); len(got) != 2 || got[0].Name != "www" {
		t.Fatalf("after edit and stale delete: %+v", got)
	}
	// Form errors and the backend's refusals show at the form, with what
	// was typed.
	for _, tc := range []struct {
		name string
		v    url.Values
		want string
	}{
		{"a token that is no address", url.Values{"kind": {"token"}, "token": {"80"}, "ports": {"tcp/80"}}, "want an interface identifier like ::80"},
		{"a subnet number that is no number", url.Values{"kind": {"subnet"}, "index": {"one"}, "bits": {"64"}}, "want a whole number"},
		{"the backend's refusal", url.Values{"kind": {"subnet"}, "index": {"1"}, "bits": {"48"}}, "subnet /48 is outside the delegated prefix"},
	} {
		tc.v.Set("rev", rev())
		tc.v.Set("name", "typed-name")
		b.refuseRules = nil
		if tc.name == "the backend's refusal" {
			b.refuseRules = fmt.Errorf("%w: rule 3 (\"typed-name\"): subnet /48 is outside the delegated prefix 2001:db8:1000:100::/56", ErrInvalid)
		}
		w := post("/rules", tc.v)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want) || !strings.Contains(w.Body.String(), `value="typed-name"`) {
			t.Errorf("%s: %d, want 400 with %q and the typed values: %.2000s", tc.name, w.Code, tc.want, w.Body)
		}
	}
	b.refuseRules = nil
	if w := post("/rules/2/delete", url.Values{"rev": {rev()}}); w.Code != http.StatusSeeOther || len(b.InboundRules()) != 1 {
		t.Errorf("delete: %d, %d rules left", w.Code, len(b.InboundRules()))
	}
	if w := post("/rules/7", url.Values{"rev": {rev()}}); w.Code != http.StatusNotFound {
		t.Errorf("edit of a rule that is not there: %d", w.Code)
	}
}

func TestDecodeSettings(t *testing.T) {
	good := `{"format":"gizmo-settings","version":1,"hosts":{"02:00:00:00:00:10":{"hostname":"nas","exposed_ports":["tcp/443"]}},"inbound_rules":[{"name":"web","token":"::80","ports":["tcp/443"]}]}`
	s, err := decodeSettings([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Hosts["02:00:00:00:00:10"]; !p.DNS64 || !p.V6OnlyPreferred || p.Hostname != "nas" {
		t.Errorf("a host entry that leaves the switches out: %+v, want the defaults on", p)
	}
	for _, tc := range []struct {
		rule string
		file string
		want []string
	}{
		{"an empty file", ``, []string{"ends in the middle"}},
		{"JSON syntax: the line and column", "{\n  \"format\": \"gizmo-settings\",\n  \"version\": 1,,\n}", []string{"line 3, column 16"}},
		{"another JSON document", `{"rings":{}}`, []string{`unknown field "rings"`}},
		{"no format", `{"version":1}`, []string{`no "format": "gizmo-settings"`}},
		{"no version", `{"format":"gizmo-settings"}`, []string{`no "version"`}},
		{"a newer version", `{"format":"gizmo-settings","version":2}`, []string{"version 2, from a newer gizmo"}},
		{"every bad entry is named, hosts in order", `{"format":"gizmo-settings","version":1,"hosts":{
			"02:00:00:00:00:20":{"dns64":"yes"},
			"02:00:00:00:00:10":{"hostname":"a_b","ipv4":"2001:db8::1"},
			"02:00:00:00:00:30":{"dns_64":false}},
			"inbound_rules":[{"name":"ok","token":"::1","ports":["tcp/1"]},{"name":"x","tokn":"::2"}]}`, []string{
			"host 02:00:00:00:00:10: hostname \"a_b\"",
			"host 02:00:00:00:00:20: cannot unmarshal",
			"host 02:00:00:00:00:30: unknown field \"dns_64\"",
			"inbound rule 2: unknown field \"tokn\"",
		}},
		{"trailing data", good + ` {}`, []string{"trailing data"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			_, err := decodeSettings([]byte(tc.file))
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("errors:\n%v\nwant %d lines", err, len(tc.want))
			}
			for i := range lines {
				if !strings.Contains(lines[i], tc.want[i]) {
					t.Errorf("line %d %q, want %q in it", i+1, lines[i], tc.want[i])
				}
			}
		})
	}
}

func restoreUpload(t *testing.T, name string, data []byte) (string, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return body.String(), mw.FormDataContentType()
}

// Backup and restore through the settings page: the file comes back as it
// went, a broken file changes nothing and the page names what is wrong.
func TestBackupRestore(t *testing.T) {
	s, b := newTestServer(t)
	b.SetPolicy(testMAC, state.HostPolicy{Hostname: "nas", IPv4: netip.MustParseAddr("203.0.113.140"), ExposedPorts: []string{"tcp/443"}, AppPinholes: true})
	b.SetInboundRules([]state.InboundRule{{Name: "web", Token: netip.MustParseAddr("::80"), Ports: []string{"tcp/443"}}})
	before := b.Settings()

	w := do(t, s, "GET", "/settings/backup", "", adminAuth)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Disposition"), `attachment; filename="gizmo-settings-`) {
		t.Fatalf("backup: %d %v", w.Code, w.Header())
	}
	file := w.Body.Bytes()
	var parsed map[string]any
	if err := json.Unmarshal(file, &parsed); err != nil || parsed["format"] != "gizmo-settings" || parsed["version"] != 1.0 {
		t.Fatalf("backup file %s: %v", file, err)
	}

	// Change everything, then restore the file.
	b.SetPolicy(testMAC, state.DefaultHostPolicy())
	b.SetInboundRules(nil)
	upload := func(name string, data []byte) *httptest.ResponseRecorder {
		body, ctype := restoreUpload(t, name, data)
		return do(t, s, "POST", "/settings/restore", body, both(adminAuth, func(r *http.Request) { r.Header.Set("Content-Type", ctype) }))
	}
	if w := upload("gizmo-settings.json", file); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/settings?restored=1+host") {
		t.Fatalf("restore: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if got := b.Settings(); !reflect.DeepEqual(got, before) {
		t.Errorf("after the round trip: %+v, want %+v", got, before)
	}

	// A broken file changes nothing, and the page says why.
	broken := bytes.Replace(file, []byte(`"tcp/443"`), []byte(`"tcp/443", "http"`), 1)
	w = upload("broken.json", broken)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Nothing was changed") || !strings.Contains(w.Body.String(), "host 02:00:00:00:00:10: exposed ports: &#34;http&#34; is no port") ||
		!strings.Contains(w.Body.String(), "broken.json") {
		t.Errorf("broken file: %d %.3000s", w.Code, w.Body)
	}
	if got := b.Settings(); !reflect.DeepEqual(got, before) {
		t.Errorf("a broken file changed the settings to %+v", got)
	}
	if w := upload("x.json", []byte("not json")); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "not a settings file") {
		t.Errorf("not JSON: %d", w.Code)
	}

	// The API: the same file, and errors as JSON.
	w = do(t, s, "PUT", "/api/settings", string(broken), adminAuth)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "nothing was changed") {
		t.Errorf("API restore of a broken file: %d %s", w.Code, w.Body)
	}
	if w := do(t, s, "PUT", "/api/settings", string(file), adminAuth); w.Code != 200 || !strings.Contains(w.Body.String(), `"hosts":1`) {
		t.Errorf("API restore: %d %s", w.Code, w.Body)
	}
	if w := doPlain(t, s, "PUT", "/api/settings", string(file), adminAuth); w.Code != http.StatusForbidden {
		t.Errorf("restore over plain HTTP: %d", w.Code)
	}
}

// A restore may be larger than other writes (every host's settings), but
// is bounded too.
func TestRestoreBodyIsBounded(t *testing.T) {
	s, b := newTestServer(t)
	hosts := map[string]state.HostPolicy{}
	for i := range 600 { // about 100 KB, over Limits.MaxBody
		hosts[fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)] = state.HostPolicy{Hostname: fmt.Sprintf("host-%d", i), ExposedPorts: []string{"tcp/443", "udp/51820"}}
	}
	file := encodeSettings(state.Settings{Hosts: hosts}, time.Now())
	if len(file) <= int(DefaultLimits.MaxBody) {
		t.Fatalf("the test file is only %d bytes", len(file))
	}
	if w := do(t, s, "PUT", "/api/settings", string(file), adminAuth); w.Code != 200 || len(b.Settings().Hosts) != 600 {
		t.Errorf("restore of %d bytes: %d %.300s", len(file), w.Code, w.Body)
	}
	huge := strings.Repeat(" ", maxSettingsBody+1)
	if w := do(t, s, "PUT", "/api/settings", huge, adminAuth); w.Code != http.StatusBadRequest || s.stats.bodyTooLarge.Load() != 1 {
		t.Errorf("restore over %d bytes: %d, counted %d", maxSettingsBody, w.Code, s.stats.bodyTooLarge.Load())
	}
}

func TestLogPage(t *testing.T) {
	ring := logring.New(10, 512)
	s, _ := newTestServerWith(t, func(c *Config) { c.Log = ring })
	ring.Write([]byte("time=2026-11-26T12:00:00.000Z level=INFO msg=\"first line\"\n"))
	ring.Write([]byte("time=2026-11-26T12:00:01.000Z level=WARN msg=\"<b>second</b>\"\n"))
	w := do(t, s, "GET", "/log", "", adminAuth)
	body := w.Body.String()
	if i, j := strings.Index(body, "first line"), strings.Index(body, "&lt;b&gt;second"); i < 0 || j < 0 || j > i {
		t.Errorf("log page: newest first, escaped: %.3000s", body)
	}
	if !strings.Contains(body, `<time datetime="2026-11-26T12:00:01Z"`) {
		t.Errorf("log times are no <time> elements")
	}
	if w := do(t, s, "GET", "/log?level=warn", "", adminAuth); strings.Contains(w.Body.String(), "first line") {
		t.Errorf("the warnings view shows an INFO line")
	}
	if m := do(t, s, "GET", "/metrics", "", nil).Body.String(); !strings.Contains(m, "gizmo_web_log_lines 2\n") || !strings.Contains(m, "gizmo_web_history_hosts_folded_total 0\n") {
		t.Errorf("/metrics lacks the log and history bounds")
	}
}

func TestParseLogLine(t *testing.T) {
	for in, want := range map[string]logLine{
		`time=2026-11-26T12:00:00.5+01:00 level=ERROR msg=x k=v`:                  {time.Date(2026, 11, 26, 11, 0, 0, 5e8, time.UTC), "ERROR", "x", "k=v"},
		`time=2026-11-26T12:00:00Z level=INFO msg="a \"quoted\" message" k="v w"`: {time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), "INFO", `a "quoted" message`, `k="v w"`},
		`time=2026-11-26T12:00:00Z level=INFO msg="unterminated`:                  {time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), "INFO", `"unterminated`, ""},
		`panic: something`:          {Text: "panic: something"},
		`time=yesterday level=X`:    {Text: "time=yesterday level=X"},
		`time=2026-11-26T12:00:00Z`: {Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)},
	} {
		if got := parseLogLine(in); !got.Time.Equal(want.Time) || got.Level != want.Level || got.Msg != want.Msg || got.Text != want.Text {
			t.Errorf("parseLogLine(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// Log lines carry what hosts announced (names, addresses): the page's
// parser takes any line.
func FuzzParseLogLine(f *testing.F) {
	f.Add(`time=2026-11-26T12:00:00Z level=INFO msg="a \"quoted\" message" k=v`)
	f.Add(`time=2026-11-26T12:00:00Z level=INFO msg=`)
	f.Fuzz(func(t *testing.T, line string) {
		l := parseLogLine(line)
		if len(l.Text) > len(line) {
			t.Errorf("parsed %q into %+v", line, l)
		}
	})
}

// Settings files are uploaded by whoever is logged in, from anywhere.
func FuzzDecodeSettings(f *testing.F) {
	f.Add([]byte(`{"format":"gizmo-settings","version":1,"hosts":{"02:00:00:00:00:10":{"hostname":"nas"}},"inbound_rules":[]}`))
	f.Add([]byte(`{"format":"gizmo-settings","version":1,"hosts":{"x":{"ipv4":"::1"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSettings(data)
		if err != nil {
			return
		}
		for mac, p := range s.Hosts {
			if validHostname(p.Hostname) != nil || p.IPv4.IsValid() && !p.IPv4.Is4() {
				t.Errorf("accepted host %s with %+v", mac, p)
			}
		}
	})
}
