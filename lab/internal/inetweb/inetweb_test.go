package inetweb

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestHandlerNamesServerAndClient(t *testing.T) {
	site := Site{Name: "dual", Addr: netip.MustParseAddrPort("[2001:db8:ffff::10]:80")}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "[2001:db8:1000::1234]:40000"
	rec := httptest.NewRecorder()
	Handler(site).ServeHTTP(rec, req)
	want := "server=2001:db8:ffff::10 name=dual client=2001:db8:1000::1234\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestBytes(t *testing.T) {
	site := Site{Name: "v4only", Addr: netip.MustParseAddrPort("198.51.100.80:80")}
	for _, tc := range []struct {
		path   string
		status int
		n      int
	}{
		{"/bytes/0", http.StatusOK, 0},
		{"/bytes/100000", http.StatusOK, 100000},
		{"/bytes/-1", http.StatusBadRequest, -1},
		{"/bytes/x", http.StatusBadRequest, -1},
		{"/bytes/99999999999", http.StatusBadRequest, -1},
	} {
		rec := httptest.NewRecorder()
		Handler(site).ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, rec.Code, tc.status)
			continue
		}
		if tc.n >= 0 {
			b, _ := io.ReadAll(rec.Body)
			if len(b) != tc.n {
				t.Errorf("%s: %d bytes, want %d", tc.path, len(b), tc.n)
			}
		}
	}
}

func FuzzParseSite(f *testing.F) {
	for _, s := range []string{"v4only=198.51.100.80:80", "dual=[2001:db8:ffff::10]:80", "=1.2.3.4:80", "x", "a=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		site, err := ParseSite(s)
		if err == nil && (site.Name == "" || !site.Addr.IsValid()) {
			t.Errorf("ParseSite(%q) = %+v without error", s, site)
		}
	})
}
