package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

const testMAC = "02:00:00:00:00:10"

func basicAuth(pw string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth("gizmo", pw) }
}

func formBody(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }

func both(mods ...func(*http.Request)) func(*http.Request) {
	return func(r *http.Request) {
		for _, m := range mods {
			m(r)
		}
	}
}

func withCookie(token string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: sessionCookie, Value: token}) }
}

// login posts the login form over HTTPS and returns the session cookie.
func login(t *testing.T, s *Server, pw string) *http.Cookie {
	t.Helper()
	w := do(t, s, "POST", "/login", "password="+pw+"&next=/hosts", formBody)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("login set no %s cookie: %v", sessionCookie, w.Result().Header)
	return nil
}

func policyChanged(b *fakeBackend) bool {
	return !b.Snapshot().Hosts[testMAC].Policy.DNS64
}

// Plain HTTP is read-only: anyone who takes the gizmo's address on the LAN
// reads it, so no write goes through, not even with the right password.
func TestPlainHTTPIsReadOnly(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		mod                      func(*http.Request)
	}{
		{"a policy PUT with the right password", "PUT", "/api/hosts/" + testMAC + "/policy", `{"dns64":false}`, basicAuth("secret")},
		{"a rules PUT with the right password", "PUT", "/api/firewall/rules", `[]`, basicAuth("secret")},
		{"the hosts page's form with the right password", "POST", "/hosts/" + testMAC + "/policy", dns64OffForm, both(formBody, basicAuth("secret"))},
		{"a login", "POST", "/login", "password=secret", formBody},
		{"a policy PUT with no password", "PUT", "/api/hosts/" + testMAC + "/policy", `{"dns64":false}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := newTestServer(t)
			w := doPlain(t, s, tc.method, tc.path, tc.body, tc.mod)
			msg := w.Body.String()
			if w.Code != http.StatusForbidden || !strings.Contains(msg, "https://gizmo.home.arpa/") || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Errorf("got %d %q, want 403 with one line that points to HTTPS", w.Code, msg)
			}
			if policyChanged(b) {
				t.Error("the policy changed over plain HTTP")
			}
			if got := s.stats.plainWritesRefused.Load(); got != 1 {
				t.Errorf("plain-HTTP refusals counted %d, want 1", got)
			}
		})
	}
}

func TestPlainHTTPSendsLoginToHTTPS(t *testing.T) {
	s, _ := newTestServer(t)
	w := doPlain(t, s, "GET", "/login?next=/hosts", "", nil)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "https://gizmo.home.arpa/login?next=/hosts" {
		t.Errorf("GET /login over HTTP: %d → %q", w.Code, w.Header().Get("Location"))
	}
	// Another HTTPS port is kept in the redirect; an IPv6 literal keeps
	// its brackets.
	s, _ = newTestServerWith(t, func(c *Config) { c.Listen.HTTPS = []string{"[::]:8443"} })
	w = doURL(t, s, "GET", "http://[fd00::1]/login", "", nil)
	if got := w.Header().Get("Location"); got != "https://[fd00::1]:8443/login" {
		t.Errorf("redirect to %q, want https://[fd00::1]:8443/login", got)
	}
	// Read-only pages stay on plain HTTP, with a link to the login.
	w = doPlain(t, s, "GET", "/hosts", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `href="https://gizmo.home.arpa:8443/login"`) {
		t.Errorf("GET /hosts over HTTP: %d, want 200 with an HTTPS login link", w.Code)
	}
}

// The password never counts over plain HTTP, not even for a read.
func TestPasswordOverPlainHTTPIsRefused(t *testing.T) {
	s, b := newTestServer(t)
	withTraffic(b)
	w := doPlain(t, s, "GET", "/api/insights", "", basicAuth("secret"))
	if w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), "legacy.example.test") {
		t.Errorf("insights with the password over HTTP: %d %.200s", w.Code, w.Body)
	}
}

func TestLoginSessionCookie(t *testing.T) {
	s, b := newTestServer(t)
	c := login(t, s, "secret")
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/", c)
	}
	if len(c.Value) < 43 { // 32 random bytes in base64
		t.Errorf("session token %q is short", c.Value)
	}
	// The form, with the cookie and no password, changes the policy.
	w := do(t, s, "POST", "/hosts/"+testMAC+"/policy", dns64OffForm, both(formBody, withCookie(c.Value)))
	if w.Code != http.StatusSeeOther || !policyChanged(b) {
		t.Fatalf("form with the session cookie: %d %s", w.Code, w.Body)
	}
	// So does the API.
	w = do(t, s, "PUT", "/api/hosts/"+testMAC+"/policy", `{"dns64":true}`, withCookie(c.Value))
	if w.Code != 200 || policyChanged(b) {
		t.Fatalf("API with the session cookie: %d %s", w.Code, w.Body)
	}
	// The cookie never counts over plain HTTP (a browser would not send
	// it; an attacker who has it gains nothing there).
	if w := doPlain(t, s, "GET", "/api/insights", "", withCookie(c.Value)); strings.Contains(w.Body.String(), testMAC) {
		t.Error("the session cookie unlocked per-host details over plain HTTP")
	}
	// After logging out the cookie is worthless.
	w = do(t, s, "POST", "/logout", "", withCookie(c.Value))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", w.Code)
	}
	if w := do(t, s, "PUT", "/api/hosts/"+testMAC+"/policy", `{"dns64":false}`, withCookie(c.Value)); w.Code != http.StatusUnauthorized || policyChanged(b) {
		t.Errorf("after logout: %d", w.Code)
	}
	// A made-up token is no session.
	if w := do(t, s, "PUT", "/api/hosts/"+testMAC+"/policy", `{"dns64":false}`, withCookie("AAAA")); w.Code != http.StatusUnauthorized {
		t.Errorf("forged token: %d", w.Code)
	}
}

func TestWrongPasswordAtLogin(t *testing.T) {
	s, _ := newTestServer(t)
	w := do(t, s, "POST", "/login", "password=guess", formBody)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Wrong password") || len(w.Result().Cookies()) != 0 {
		t.Errorf("wrong password: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	if s.stats.loginFailures.Load() != 1 {
		t.Errorf("failures counted %d, want 1", s.stats.loginFailures.Load())
	}
}

// A login returns to a path on the gizmo, never to another site.
func TestLoginDoesNotRedirectOffSite(t *testing.T) {
	for next, want := range map[string]string{
		"/hosts": "/hosts", "/hosts#h-02:00:00:00:00:10": "/hosts#h-02:00:00:00:00:10",
		"//evil.example/": "/", `/\evil.example`: "/", "https://evil.example/": "/", "": "/",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

func TestCrossSiteWritesAreRefusedWithASession(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
	}{
		{"Sec-Fetch-Site: cross-site", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }},
		{"an Origin of another site", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }},
		{"an Origin of the gizmo's own plain-HTTP pages", func(r *http.Request) { r.Header.Set("Origin", "http://gizmo.home.arpa") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := newTestServer(t)
			c := login(t, s, "secret")
			w := do(t, s, "POST", "/hosts/"+testMAC+"/policy", dns64OffForm, both(formBody, withCookie(c.Value), tc.mod))
			if w.Code != http.StatusForbidden || policyChanged(b) {
				t.Errorf("got %d, policy changed %v; want 403 and no change", w.Code, policyChanged(b))
			}
			if s.stats.crossOrigin.Load() != 1 {
				t.Errorf("CSRF refusals counted %d", s.stats.crossOrigin.Load())
			}
		})
	}
	// A browser's own form: with Referrer-Policy no-referrer it sends
	// Origin: null, and Sec-Fetch-Site tells that it is same-origin.
	s, b := newTestServer(t)
	c := login(t, s, "secret")
	w := do(t, s, "POST", "/hosts/"+testMAC+"/policy", dns64OffForm, both(formBody, withCookie(c.Value), func(r *http.Request) {
		r.Header.Set("Origin", "null")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}))
	if w.Code != http.StatusSeeOther || !policyChanged(b) {
		t.Errorf("the page's own form: %d %s", w.Code, w.Body)
	}
	// Logging in from another site's page (login CSRF) is refused too.
	s, _ = newTestServer(t)
	w = do(t, s, "POST", "/login", "password=secret", both(formBody, func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }))
	if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
		t.Errorf("cross-site login: %d", w.Code)
	}
}

// fakeClock is a clock that tests move.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func fromAddr(addr string) func(*http.Request) {
	return func(r *http.Request) { r.RemoteAddr = addr }
}

func TestLoginRateLimitPerClient(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s, b := newTestServerWith(t, func(c *Config) { c.Now = clock.now })
	guesser := fromAddr("[2001:db8:1000:100::66]:40000")
	for i := range clientLoginBurst {
		if w := do(t, s, "POST", "/login", fmt.Sprintf("password=guess%d", i), both(formBody, guesser)); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	// The bucket is empty: even the right password is not checked, also
	// from another address of the same /64 (RFC 8981 addresses are free).
	sameNet := fromAddr("[2001:db8:1000:100::67]:40000")
	w := do(t, s, "POST", "/login", "password=secret", both(formBody, sameNet))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after %d wrong passwords: %d, Retry-After %q", clientLoginBurst, w.Code, w.Header().Get("Retry-After"))
	}
	// Basic auth goes through the same limiter.
	w = do(t, s, "PUT", "/api/hosts/"+testMAC+"/policy", `{"dns64":false}`, both(basicAuth("secret"), guesser))
	if w.Code != http.StatusTooManyRequests || policyChanged(b) {
		t.Errorf("basic auth while throttled: %d", w.Code)
	}
	if got := s.stats.loginThrottled.Load(); got != 2 {
		t.Errorf("throttled attempts counted %d, want 2", got)
	}
	// Another client is not held up.
	if w := do(t, s, "POST", "/login", "password=secret", both(formBody, fromAddr("203.0.113.150:5000"))); w.Code != http.StatusSeeOther {
		t.Errorf("another client's login: %d", w.Code)
	}
	// The bucket refills with time.
	clock.add(clientLoginEvery)
	if w := do(t, s, "POST", "/login", "password=secret", both(formBody, guesser)); w.Code != http.StatusSeeOther {
		t.Errorf("login after waiting: %d", w.Code)
	}
}

func TestLoginRateLimitGlobal(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s, _ := newTestServerWith(t, func(c *Config) { c.Now = clock.now })
	// Guesses spread over many addresses, each under its own limit.
	for i := range globalLoginBurst {
		addr := fmt.Sprintf("203.0.113.%d:5000", 130+i)
		if w := do(t, s, "POST", "/login", "password=guess", both(formBody, fromAddr(addr))); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	w := do(t, s, "POST", "/login", "password=secret", both(formBody, fromAddr("203.0.113.200:5000")))
	if w.Code != http.StatusTooManyRequests {
		t.Errorf("a fresh address after %d guesses from others: %d, want 429", globalLoginBurst, w.Code)
	}
	clock.add(globalLoginEvery)
	if w := do(t, s, "POST", "/login", "password=secret", both(formBody, fromAddr("203.0.113.200:5000"))); w.Code != http.StatusSeeOther {
		t.Errorf("after the global bucket refilled: %d", w.Code)
	}
}

func TestLoginLimiterForgetsClientsInBounds(t *testing.T) {
	l := newLoginLimiter(4)
	now := time.Now()
	for i := range 10 {
		l.failed(mustAddr(fmt.Sprintf("203.0.113.%d", i)), now)
	}
	if n, forgotten := l.stats(); n != 4 || forgotten != 6 {
		t.Errorf("tracking %d clients, forgot %d; want 4 and 6", n, forgotten)
	}
}

func TestSessionsAreBoundedAndExpire(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ss := newSessions(3, time.Hour, 24*time.Hour)
	var tokens []string
	for i := range 4 {
		tokens = append(tokens, ss.create(t0.Add(time.Duration(i)*time.Second)))
	}
	if ss.valid(tokens[0], t0.Add(time.Minute)) {
		t.Error("the least recently used session survived a login beyond the bound")
	}
	if n, evicted, _ := ss.stats(t0.Add(time.Minute)); n != 3 || evicted != 1 {
		t.Errorf("%d sessions, %d evicted; want 3 and 1", n, evicted)
	}
	// Using a session keeps it alive; an idle one ends.
	if !ss.valid(tokens[1], t0.Add(50*time.Minute)) {
		t.Fatal("session ended before its idle time")
	}
	at := t0.Add(100 * time.Minute)
	if !ss.valid(tokens[1], at) || ss.valid(tokens[2], at) {
		t.Error("idle expiry: the used session must live, the idle one end")
	}
	// A session ends at its maximum age however busy it is.
	for at := t0; at.Before(t0.Add(25 * time.Hour)); at = at.Add(30 * time.Minute) {
		ss.valid(tokens[1], at)
	}
	if ss.valid(tokens[1], t0.Add(25*time.Hour)) {
		t.Error("a session outlived its maximum age")
	}
	// A clock that jumps back (NTP after a boot in 1970) ends sessions
	// rather than stretching them.
	tok := ss.create(t0)
	if ss.valid(tok, t0.Add(-time.Hour)) {
		t.Error("a session stayed valid with the clock set back")
	}
}

// Per-host DNS names and statistics need the login; nat64.sessions stays
// public (a contract).
func TestInsightsRedaction(t *testing.T) {
	s, b := newTestServer(t)
	withTraffic(b)
	decode := func(w interface{ Bytes() []byte }) Insights {
		var ins Insights
		if err := json.Unmarshal(w.Bytes(), &ins); err != nil {
			t.Fatal(err)
		}
		return ins
	}
	for _, tc := range []struct {
		name    string
		mod     func(*http.Request)
		details bool
	}{
		{"anonymous over HTTPS", nil, false},
		{"anonymous over HTTP", nil, false},
		{"the password over HTTPS", basicAuth("secret"), true},
		{"a session", withCookie(s.sessions.create(time.Now())), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			get := do
			if strings.Contains(tc.name, "HTTP ") || strings.HasSuffix(tc.name, "HTTP") {
				get = doPlain
			}
			w := get(t, s, "GET", "/api/insights", "", tc.mod)
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			raw := w.Body.String()
			ins := decode(w.Body)
			if ins.NAT64.Sessions != 12 || !strings.Contains(raw, `"sessions":12`) {
				t.Errorf("nat64.sessions missing: %s", raw)
			}
			if got := len(ins.Hosts) > 0 || strings.Contains(raw, "legacy.example.test"); got != tc.details {
				t.Errorf("per-host details shown: %v, want %v", got, tc.details)
			}
			for _, page := range []struct{ path, perHost string }{
				{"/hosts", "legacy.example.test."},
				{"/metrics", `gizmo_host_traffic_bytes_total`},
				{"/api/series?resolution=10s&hosts=1", testMAC},
			} {
				body := get(t, s, "GET", page.path, "", tc.mod).Body.String()
				if got := strings.Contains(body, page.perHost); got != tc.details {
					t.Errorf("%s shows per-host details: %v, want %v", page.path, got, tc.details)
				}
			}
		})
	}
	// A wrong password is an answer, not the public view: otherwise a
	// guesser could tell by the body (and the limiter would see nothing).
	if w := do(t, s, "GET", "/api/insights", "", basicAuth("guess")); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", w.Code)
	}
}

func TestWriteBodyIsBounded(t *testing.T) {
	s, _ := newTestServerWith(t, func(c *Config) { c.Limits.MaxBody = 1024 })
	rules := "[" + strings.Repeat(`{"name":"x","token":"::1","ports":["tcp/80"]},`, 100) + `{"name":"x","token":"::1"}]`
	w := do(t, s, "PUT", "/api/firewall/rules", rules, basicAuth("secret"))
	if w.Code != http.StatusBadRequest || s.stats.bodyTooLarge.Load() != 1 {
		t.Errorf("oversized body: %d, counted %d", w.Code, s.stats.bodyTooLarge.Load())
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
