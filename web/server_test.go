package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testrun"
	"codeberg.org/monostack/gizmo/web/tlscert"
)

// listenOn serves s on a loopback listener of the given scheme until the
// test ends, and returns its address.
func listenOn(t *testing.T, s *Server, sch scheme) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testrun.Start(t, fmt.Sprintf("serving %s", sch), func(ctx context.Context) error { return s.serveListener(ctx, ln, sch) })
	return ln.Addr().String()
}

// pinnedClient trusts exactly the server's public key, as `image update`
// and a careful owner do with a self-signed certificate.
func pinnedClient(t *testing.T, keySHA256 string) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // the pin below is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := tlscert.PublicKeyFingerprint(cs.PeerCertificates[0]); got != keySHA256 {
				return fmt.Errorf("server key %s, pinned %s", got, keySHA256)
			}
			return nil
		},
	}}}
}

// The whole path over real sockets: the certificate names the HTTPS
// address, the login over HTTPS leaves a cookie, the cookie makes a change,
// and plain HTTP refuses the same change with the password.
func TestHTTPSEndToEnd(t *testing.T) {
	s, b := newTestServer(t)
	httpsAddr := listenOn(t, s, schemeHTTPS)
	httpAddr := listenOn(t, s, schemeHTTP)
	s.SetListen(Listen{HTTP: []string{httpAddr}, HTTPS: []string{httpsAddr}})
	id := s.Identity()
	if err := id.Cert.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("certificate after SetListen: %v", err)
	}
	c := pinnedClient(t, id.PublicKeySHA256())
	base := "https://" + httpsAddr

	resp, err := c.PostForm(base+"/login", url.Values{"password": {"secret"}, "next": {"/hosts"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/hosts" || !strings.Contains(string(page), `action="/hosts/`+testMAC+`/policy"`) {
		t.Fatalf("after login: %s at %s, switches shown: %v", resp.Status, resp.Request.URL, strings.Contains(string(page), "action="))
	}
	if !strings.Contains(string(page), id.PublicKeySHA256()) {
		t.Error("the page does not show the TLS fingerprint")
	}
	req, _ := http.NewRequest("PUT", base+"/api/hosts/"+testMAC+"/policy", strings.NewReader(`{"dns64":false}`))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !policyChanged(b) {
		t.Fatalf("PUT with the session cookie: %s", resp.Status)
	}

	req, _ = http.NewRequest("PUT", "http://"+httpAddr+"/api/hosts/"+testMAC+"/policy", strings.NewReader(`{"dns64":true}`))
	req.SetBasicAuth("gizmo", "secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !policyChanged(b) || !strings.Contains(string(msg), "https://127.0.0.1:") {
		t.Errorf("plain-HTTP PUT with the password: %s %q", resp.Status, msg)
	}

	// A client pinning another key does not talk to this server.
	if _, err := pinnedClient(t, strings.Repeat("00:", 31)+"00").Get(base + "/"); err == nil {
		t.Error("a client with another pin got an answer")
	}
}

// waitClosed reads from c until the server closes it, or fails after a
// minute (the server's timeouts are a fraction of a second).
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a stalled connection open")
	}
}

// A slowloris client, which sends its header (or TLS handshake) a byte at
// a time or not at all, is closed by the header timeout, and counted.
func TestSlowClientsAreClosed(t *testing.T) {
	s, _ := newTestServerWith(t, func(c *Config) {
		c.Limits.ReadHeaderTimeout = 200 * time.Millisecond
		c.Limits.ReadTimeout = 400 * time.Millisecond
	})
	for _, sch := range []scheme{schemeHTTP, schemeHTTPS} {
		t.Run(string(sch), func(t *testing.T) {
			addr := listenOn(t, s, sch)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if sch == schemeHTTP {
				fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: gizmo.home.arpa\r\nX-Slow: ")
			}
			waitClosed(t, c)
			if got := s.stats.listener(sch).Timeouts.Load(); got != 1 {
				t.Errorf("timeouts counted %d, want 1", got)
			}
		})
	}
}

// The listener holds at most MaxConns connections; the next one waits, and
// the wait is counted.
func TestConnectionCap(t *testing.T) {
	s, _ := newTestServerWith(t, func(c *Config) { c.Limits.MaxConns = 2 })
	addr := listenOn(t, s, schemeHTTP)
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	for s.stats.http.Limited.Load() == 0 || s.stats.http.Open.Load() != 2 {
		time.Sleep(10 * time.Millisecond)
	}
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/api/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = errors.New(resp.Status)
			}
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a third connection was served while two held the cap (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	idle[0].Close()
	if err := <-got; err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
	w := do(t, s, "GET", "/metrics", "", nil)
	if !strings.Contains(w.Body.String(), `gizmo_web_connections_limited_total{listener="http"} `) {
		t.Errorf("/metrics lacks the cap counter:\n%.3000s", w.Body)
	}
}

func TestHTTPSNeedsACertificate(t *testing.T) {
	_, err := New(Config{Backend: &fakeBackend{}, Password: "x", Listen: Listen{HTTPS: []string{"[::]:443"}}})
	if err == nil {
		t.Error("HTTPS listeners without a certificate were accepted")
	}
}

// An owner's certificate is served as it is: never re-issued, never
// written.
func TestOwnersCertificate(t *testing.T) {
	dir := t.TempDir()
	own, _, err := tlscert.Ensure(dir, tlscert.Names{DNS: []string{"router.example"}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newTestServerWith(t, func(c *Config) {
		c.TLSDir = ""
		c.TLSCertFile, c.TLSKeyFile = filepath.Join(dir, tlscert.CertFile), filepath.Join(dir, tlscert.KeyFile)
	})
	s.SetListen(Listen{HTTPS: []string{"192.0.2.1:443"}})
	if got := s.Identity(); got.CertSHA256() != own.CertSHA256() {
		t.Errorf("serving %s, want the owner's %s", got.CertSHA256(), own.CertSHA256())
	}
	if again, _, _ := tlscert.Ensure(dir, tlscert.Names{DNS: []string{"router.example"}}); again.CertSHA256() != own.CertSHA256() {
		t.Error("the owner's certificate file was rewritten")
	}
}
