package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The overview says which limits were hit in the last day: the services'
// (from the insights) and the web server's own login limiter.
func TestOverviewSaysWhichLimitsWereHit(t *testing.T) {
	s, b := newTestServer(t)
	page := func() string {
		w := doPlain(t, s, "GET", "/", "", nil)
		if w.Code != http.StatusOK {
			t.Fatalf("overview: %d", w.Code)
		}
		return w.Body.String()
	}
	if p := page(); !strings.Contains(p, "No limit was hit in the last 24 hours.") || strings.Contains(p, "data-limit=") {
		t.Errorf("a quiet gizmo's overview names a limit:\n%s", p)
	}

	now := time.Now()
	b.insights.Limits = []LimitHit{
		{Key: "nat64_inbound", What: "inbound sessions refused", Count: 7900, Last: now.Add(-time.Minute)},
		{Key: "dhcp4_pool", What: "the pool was full", Count: 1, Last: now.Add(-25 * time.Hour)},
	}
	guesser := fromAddr("[2001:db8:1000:100::66]:40000")
	for i := range clientLoginBurst + 1 {
		do(t, s, "POST", "/login", fmt.Sprintf("password=guess%d", i), both(formBody, guesser))
	}
	p := page()
	for _, want := range []string{`data-limit="nat64_inbound"`, "7900×", `data-limit="web_login_attempts"`} {
		if !strings.Contains(p, want) {
			t.Errorf("the overview does not say %s", want)
		}
	}
	if strings.Contains(p, `data-limit="dhcp4_pool"`) {
		t.Error("the overview lists a limit last hit 25 hours ago")
	}
	if i, j := strings.Index(p, `data-limit="web_login_attempts"`), strings.Index(p, `data-limit="nat64_inbound"`); i > j {
		t.Error("the most recent hit (the login limiter, just now) is not first")
	}
}
