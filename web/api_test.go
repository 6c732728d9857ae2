package web

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/series"
)

type fakeBackend struct {
	mu       sync.Mutex
	st       state.State
	insights Insights
	findings Findings
	history  *series.Store
	// refusePolicy and refuseRules, when set, are SetPolicy's and
	// SetInboundRules's answers.
	refusePolicy, refuseRules error
	// vlanCommits counts the WAN VLAN changes carried out (SetWANVLAN).
	vlanCommits int
}

func (f *fakeBackend) Insights() Insights     { return f.insights }
func (f *fakeBackend) History() *series.Store { return f.history }

func (f *fakeBackend) InboundRules() []state.InboundRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.InboundRules
}

func (f *fakeBackend) SetInboundRules(rules []state.InboundRule) error {
	if f.refuseRules != nil {
		return f.refuseRules
	}
	for _, r := range rules {
		if !r.Token.IsValid() && r.Subnet == nil {
			return fmt.Errorf("%w: a rule needs a token or a subnet", ErrInvalid)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.InboundRules = rules
	return nil
}

func (f *fakeBackend) ChangeRoles(wan string) (func(), error) {
	if wan != "eth0" {
		return nil, fmt.Errorf("%w: %q is not a LAN port", ErrInvalid, wan)
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.st.Roles.WANPort = wan
	}, nil
}

func (f *fakeBackend) Settings() state.Settings {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := state.Settings{Hosts: map[string]state.HostPolicy{}, InboundRules: slices.Clone(f.st.InboundRules), WANVLAN: f.st.WANVLAN}
	for mac, h := range f.st.Hosts {
		s.Hosts[mac] = h.Policy
	}
	return s
}

// RestoreSettings refuses ports that do not start with tcp/ or udp/, as a
// stand-in for the daemon's checks.
func (f *fakeBackend) RestoreSettings(s state.Settings) error {
	for _, mac := range slices.Sorted(maps.Keys(s.Hosts)) {
		for _, p := range s.Hosts[mac].ExposedPorts {
			if !strings.HasPrefix(p, "tcp/") && !strings.HasPrefix(p, "udp/") {
				return fmt.Errorf("%w: host %s: exposed ports: %q is no port", ErrInvalid, mac, p)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for mac, p := range s.Hosts {
		h, ok := f.st.Hosts[mac]
		if !ok {
			h = &state.Host{MAC: mac}
			f.st.Hosts[mac] = h
		}
		h.Policy = p
	}
	for mac, h := range f.st.Hosts {
		if _, ok := s.Hosts[mac]; !ok {
			h.Policy = state.DefaultHostPolicy()
		}
	}
	f.st.InboundRules = s.InboundRules
	f.st.WANVLAN = s.WANVLAN
	return nil
}

// Findings are the fake's: what the test set, and each rule with no
// match.
func (f *fakeBackend) Findings() Findings {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.findings
	out.Rules = nil
	for _, r := range f.st.InboundRules {
		out.Rules = append(out.Rules, RuleFinding{Rule: r, Waiting: "the fake matches nothing"})
	}
	return out
}

func (f *fakeBackend) Snapshot() state.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	s.Hosts = map[string]*state.Host{}
	for k, h := range f.st.Hosts {
		hc := *h
		hc.Addrs = maps.Clone(h.Addrs) // as the daemon's Snapshot does
		s.Hosts[k] = &hc
	}
	return s
}

func (f *fakeBackend) SetPolicy(mac string, p state.HostPolicy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refusePolicy != nil {
		return f.refusePolicy
	}
	h, ok := f.st.Hosts[mac]
	if !ok {
		h = &state.Host{MAC: mac}
		f.st.Hosts[mac] = h
	}
	h.Policy = p
	return nil
}

// testListen is where test servers say they listen: plain HTTP on 80 and
// HTTPS on 443, as the appliance does (nothing listens in handler tests).
var testListen = Listen{HTTP: []string{"[::1]:80"}, HTTPS: []string{"[::1]:443"}}

func newTestServer(t *testing.T) (*Server, *fakeBackend) {
	return newTestServerWith(t, nil)
}

// newTestServerWith is newTestServer with a chance to change the config.
func newTestServerWith(t *testing.T, mod func(*Config)) (*Server, *fakeBackend) {
	t.Helper()
	now := time.Now()
	b := &fakeBackend{history: series.New(series.DefaultResolutions), st: state.State{
		Pref64:    netip.MustParsePrefix("2001:db8:64::/96"),
		Delegated: &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)},
		Hosts: map[string]*state.Host{"02:00:00:00:00:10": {MAC: "02:00:00:00:00:10", Policy: state.DefaultHostPolicy(),
			Addrs: map[netip.Addr]time.Time{netip.MustParseAddr("2001:db8:1000:100::10"): now}}},
	}}
	cfg := Config{Backend: b, Password: "secret", Hostnames: []string{"gizmo.home.arpa"}, Listen: testListen, TLSDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

// do sends a request over HTTPS (as far as the handler can tell).
func do(t *testing.T, s *Server, method, path, body string, mod func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	return doURL(t, s, method, "https://gizmo.home.arpa"+path, body, mod)
}

// doPlain sends a request over plain HTTP.
func doPlain(t *testing.T, s *Server, method, path, body string, mod func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	return doURL(t, s, method, "http://gizmo.home.arpa"+path, body, mod)
}

func doURL(t *testing.T, s *Server, method, url, body string, mod func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, url, strings.NewReader(body))
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

func TestStatusAndHosts(t *testing.T) {
	s, _ := newTestServer(t)
	w := do(t, s, "GET", "/api/status", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"pref64":"2001:db8:64::/96"`) || !strings.Contains(w.Body.String(), `"prefix":"2001:db8:1000:100::/56"`) ||
		!strings.Contains(w.Body.String(), `"clock":{"synced":false}`) {
		t.Errorf("status: %d %s", w.Code, w.Body)
	}
	w = do(t, s, "GET", "/api/hosts", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"2001:db8:1000:100::10"`) {
		t.Errorf("hosts: %d %s", w.Code, w.Body)
	}
	if w := do(t, s, "GET", "/api/hosts/02:00:00:00:00:99", "", nil); w.Code != 404 {
		t.Errorf("unknown host: %d", w.Code)
	}
}

// /api/status says whether the fast path runs, and if not, why; where the
// gizmo runs none (an existing network) it says nothing.
func TestStatusFastpath(t *testing.T) {
	s, b := newTestServer(t)
	for _, tc := range []struct {
		name     string
		fastpath *Fastpath
		want     string
	}{
		{"on", &Fastpath{On: true}, `"fastpath":{"on":true,"line":"fast path: on"}`},
		{"off without a BPF JIT", &Fastpath{Off: "no BPF JIT"}, `"fastpath":{"on":false,"off":"no BPF JIT","line":"fast path: off (no BPF JIT)"}`},
		{"none on an existing network", nil, ""},
	} {
		b.mu.Lock()
		b.findings.Fastpath = tc.fastpath
		b.mu.Unlock()
		body := do(t, s, "GET", "/api/status", "", nil).Body.String()
		if tc.want != "" && !strings.Contains(body, tc.want) || tc.want == "" && strings.Contains(body, `"fastpath"`) {
			t.Errorf("%s: status %s, want %s", tc.name, body, cmp.Or(tc.want, "no fastpath field"))
		}
	}
}

// asOwner sends the request with the owner's password.
func asOwner(r *http.Request) { r.SetBasicAuth("gokrazy", "secret") }

// An apiCase is a request body sent with mod (credentials, headers) and
// the status and part of the body it must get.
type apiCase struct {
	name string
	body string
	mod  func(*http.Request)
	code int
	want string
}

// send sends tc's body to path and checks the answer.
func (tc apiCase) send(t *testing.T, s *Server, method, path string) {
	t.Helper()
	w := do(t, s, method, path, tc.body, tc.mod)
	if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
		t.Fatalf("got %d %q, want %d containing %q", w.Code, w.Body, tc.code, tc.want)
	}
}

func TestPolicyEdits(t *testing.T) {
	for _, tc := range []apiCase{
		{"with the password the change is applied", `{"dns64":false,"v6only_preferred":true}`, asOwner, 200, `"dns64":false`},
		{"without the password it is refused", `{"dns64":false,"v6only_preferred":true}`, nil, 401, "password"},
		{"with a wrong password it is refused", `{"dns64":false,"v6only_preferred":true}`, func(r *http.Request) { r.SetBasicAuth("gokrazy", "guess") }, 401, "password"},
		{"from another origin it is refused (CSRF)", `{"dns64":false,"v6only_preferred":true}`, func(r *http.Request) {
			asOwner(r)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}, 403, ""},
		{"a rebound name is refused", `{"dns64":false,"v6only_preferred":true}`, func(r *http.Request) { asOwner(r); r.Host = "attacker.example" }, 421, "rebinding"},
		{"malformed JSON gets 400 with a message", `{"dns64":fals`, asOwner, 400, "policy"},
		{"a typo in a field name is not silently ignored", `{"dns_64":false,"v6only_preferred":true}`, asOwner, 400, "unknown field"},
		{"a partial edit keeps the other fields", `{"dns64":false}`, asOwner, 200, `"v6only_preferred":true`},
		{"apps may be let to open ports (UPnP)", `{"dns64":false,"app_pinholes":true}`, asOwner, 200, `"app_pinholes":true`},
		{"a device may be kept from IPv6-only hosts", `{"dns64":false,"lan_reachable":false}`, asOwner, 200, `"lan_reachable":false`},
		{"a device is reachable from IPv6-only hosts until the owner says otherwise", `{"dns64":false}`, asOwner, 200, `"lan_reachable":true`},
		{"an IPv6 reservation is refused", `{"dns64":false,"ipv4":"2001:db8::1"}`, asOwner, 400, "not an IPv4"},
		{"a bad hostname is refused", `{"dns64":true,"v6only_preferred":true,"hostname":"-bad-"}`, asOwner, 400, "RFC 1123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := newTestServer(t)
			tc.send(t, s, "PUT", "/api/hosts/02:00:00:00:00:10/policy")
			changed := !b.Snapshot().Hosts["02:00:00:00:00:10"].Policy.DNS64
			if changed != (tc.code == 200) {
				t.Errorf("policy changed = %v with status %d", changed, tc.code)
			}
		})
	}
	s, _ := newTestServer(t)
	if w := do(t, s, "PUT", "/api/hosts/not-a-mac/policy", `{"dns64":true,"v6only_preferred":true}`, asOwner); w.Code != 400 {
		t.Errorf("bad MAC: %d %s", w.Code, w.Body)
	}
}

func FuzzDecodePolicy(f *testing.F) {
	f.Add(`{"dns64":true,"v6only_preferred":false,"hostname":"printer"}`)
	f.Add(`{"dns64":1}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		p, err := DecodePolicy(strings.NewReader(body), state.DefaultHostPolicy())
		if err == nil && validHostname(p.Hostname) != nil {
			t.Errorf("accepted invalid hostname %q", p.Hostname)
		}
	})
}

func TestInboundRules(t *testing.T) {
	s, b := newTestServer(t)
	if w := do(t, s, "PUT", "/api/firewall/rules", `[{"name":"web","token":"::80","ports":["tcp/80"]}]`, nil); w.Code != 401 {
		t.Errorf("without password: %d", w.Code)
	}
	if w := do(t, s, "PUT", "/api/firewall/rules", `[{"name":"web","token":"::80","ports":["tcp/80"]}]`, asOwner); w.Code != 200 {
		t.Fatalf("valid rule: %d %s", w.Code, w.Body)
	}
	if w := do(t, s, "PUT", "/api/firewall/rules", `[{"name":"nothing"}]`, asOwner); w.Code != 400 || !strings.Contains(w.Body.String(), "token or a subnet") {
		t.Errorf("invalid rule: %d %s", w.Code, w.Body)
	}
	if w := do(t, s, "PUT", "/api/firewall/rules", `[{"nmae":"typo"}]`, asOwner); w.Code != 400 {
		t.Errorf("unknown field: %d %s", w.Code, w.Body)
	}
	if got := b.InboundRules(); len(got) != 1 || got[0].Name != "web" {
		t.Errorf("after refused edits the rules are %+v, want the valid one kept", got)
	}
	if w := do(t, s, "GET", "/api/firewall/rules", "", nil); w.Code != 200 || !strings.Contains(w.Body.String(), `"token":"::80"`) {
		t.Errorf("GET rules: %d %s", w.Code, w.Body)
	}
}

// Forged toggles without the password or from another origin are refused;
// every malformed request gets a 400 with a message.
func TestForgedAndMalformedRequests(t *testing.T) {
	form := func(r *http.Request) {
		asOwner(r)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, tc := range []struct {
		name, method, path, body string
		mod                      func(*http.Request)
		code                     int
		want                     string
	}{
		{"a form posted from another site is refused even with the password (CSRF)", "POST", "/hosts/02:00:00:00:00:10/policy", dns64OffForm,
			func(r *http.Request) { form(r); r.Header.Set("Origin", "http://attacker.example") }, 403, ""},
		{"a cross-site form by Sec-Fetch-Site is refused", "POST", "/hosts/02:00:00:00:00:10/policy", dns64OffForm,
			func(r *http.Request) { form(r); r.Header.Set("Sec-Fetch-Site", "cross-site") }, 403, ""},
		{"a form sent to a rebound name is refused", "POST", "/hosts/02:00:00:00:00:10/policy", dns64OffForm,
			func(r *http.Request) { form(r); r.Host = "attacker.example:443" }, 421, "rebinding"},
		{"a page under a rebound name is refused", "GET", "/hosts", "", func(r *http.Request) { r.Host = "attacker.example" }, 421, "rebinding"},
		{"a form to a bad MAC gets 400", "POST", "/hosts/zz:zz/policy", "dns64=on", form, 400, "not a MAC"},
		{"an oversized form gets 400", "POST", "/hosts/02:00:00:00:00:10/policy", "hostname=" + strings.Repeat("a", 5000), form, 400, "form"},
		{"a bad hostname in the form gets 400", "POST", "/hosts/02:00:00:00:00:10/policy", "dns64=on&hostname=a_b", form, 400, "RFC 1123"},
		{"JSON with trailing data gets 400", "PUT", "/api/hosts/02:00:00:00:00:10/policy", `{"dns64":true} {"dns64":false}`, asOwner, 400, "trailing"},
		{"a JSON list instead of an object gets 400", "PUT", "/api/hosts/02:00:00:00:00:10/policy", `[true]`, asOwner, 400, "policy"},
		{"an empty JSON body gets 400", "PUT", "/api/hosts/02:00:00:00:00:10/policy", ``, asOwner, 400, "policy"},
		{"an oversized JSON body gets 400", "PUT", "/api/hosts/02:00:00:00:00:10/policy", `{"hostname":"` + strings.Repeat("a", 5000) + `"}`, asOwner, 400, "policy"},
		{"a rules body that is not a list gets 400", "PUT", "/api/firewall/rules", `{"name":"x"}`, asOwner, 400, "rules"},
		{"a bad since gets 400", "GET", "/api/series?since=yesterday", "", nil, 400, "RFC 3339"},
		{"an unknown resolution gets 400", "GET", "/api/series?resolution=1d", "", nil, 400, "resolutions"},
		{"a bad hosts flag gets 400", "GET", "/api/series?hosts=maybe", "", nil, 400, "boolean"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := newTestServer(t)
			w := do(t, s, tc.method, tc.path, tc.body, tc.mod)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("got %d %q, want %d containing %q", w.Code, w.Body, tc.code, tc.want)
			}
			if tc.code >= 400 && w.Code != 403 && strings.TrimSpace(w.Body.String()) == "" {
				t.Errorf("error without a message")
			}
			if p := b.Snapshot().Hosts["02:00:00:00:00:10"].Policy; !reflect.DeepEqual(p, state.DefaultHostPolicy()) {
				t.Errorf("refused request changed the policy to %+v", p)
			}
		})
	}
}

func TestFramingIsRefused(t *testing.T) {
	s, _ := newTestServer(t)
	w := do(t, s, "GET", "/hosts", "", nil)
	if got := w.Header().Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY (clickjacking of the toggles)", got)
	}
	if got := w.Header().Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q, want frame-ancestors 'none'", got)
	}
}

// The owner moves the WAN role; nothing else may. The answer goes out
// before the change is carried out.
func TestRolesChange(t *testing.T) {
	for _, tc := range []apiCase{
		{"with the password the change is accepted", `{"wan":"eth0"}`, asOwner, 202, `"wan":"eth0"`},
		{"without the password it is refused", `{"wan":"eth0"}`, nil, 401, "password"},
		{"from another origin it is refused (CSRF)", `{"wan":"eth0"}`, func(r *http.Request) { asOwner(r); r.Header.Set("Sec-Fetch-Site", "cross-site") }, 403, ""},
		{"a port that is no LAN port gets 400", `{"wan":"eth9"}`, asOwner, 400, "not a LAN port"},
		{"no port gets 400", `{}`, asOwner, 400, "wan"},
		{"a typo gets 400", `{"wna":"eth0"}`, asOwner, 400, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := newTestServer(t)
			tc.send(t, s, "POST", "/api/roles")
			if moved := b.Snapshot().Roles.WANPort == "eth0"; moved != (tc.code == 202) {
				t.Errorf("roles moved = %v with status %d", moved, tc.code)
			}
		})
	}
}

// The status and the overview name a rogue upstream heard on a LAN port,
// and say whether the WAN is pinned.
func TestRogueUpstreamShown(t *testing.T) {
	s, b := newTestServer(t)
	at := time.Date(2026, 11, 26, 7, 30, 0, 0, time.UTC)
	b.st.Roles = state.RolesStatus{Detected: true, WANPort: "eth1", LANPorts: []string{"eth0"}, Pinned: true,
		Rogue: &state.RogueUpstream{Port: "eth0", Kind: "RA", At: at, SourceMAC: "02:00:00:00:02:10", Source: netip.MustParseAddr("fe80::ff:fe00:210")}}
	w := do(t, s, "GET", "/api/status", "", nil)
	for _, want := range []string{`"pinned":true`, `"rogue_upstream":{"port":"eth0","kind":"RA","at":"2026-11-26T07:30:00Z","source_mac":"02:00:00:00:02:10","source":"fe80::ff:fe00:210"}`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("status lacks %s: %s", want, w.Body)
		}
	}
	w = do(t, s, "GET", "/", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Rogue upstream") || !strings.Contains(w.Body.String(), "RA from 02:00:00:00:02:10 (fe80::ff:fe00:210) on LAN port eth0") {
		t.Errorf("overview lacks the rogue line: %d", w.Code)
	}
}
