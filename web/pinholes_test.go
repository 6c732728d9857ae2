package web

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// GET /api/hosts lists each host's open pinholes with what they open and
// how long they have left; the hosts page shows them to the logged-in
// owner. An expired one waiting for the daemon to drop it is not shown.
func TestHostPinholes(t *testing.T) {
	s, b := newTestServer(t)
	now := time.Now()
	h := b.st.Hosts[testMAC]
	h.Policy.AppPinholes = true
	h.Pinholes = []state.Pinhole{
		{ID: 3, Client: netip.MustParseAddr("2001:db8:1000:100::10"), Proto: 6, Port: 8090, Expires: now.Add(59*time.Minute + 30*time.Second)},
		{ID: 4, Client: netip.MustParseAddr("2001:db8:1000:100::10"), Proto: 17, Port: 3478, RemoteHost: netip.MustParseAddr("2001:db8:ffff::10"), RemotePort: 3478, Expires: now.Add(25 * time.Hour)},
		{ID: 5, Client: netip.MustParseAddr("2001:db8:1000:100::10"), Proto: 6, Port: 8091, Expires: now.Add(-time.Second)},
	}

	w := doPlain(t, s, "GET", "/api/hosts", "", nil)
	var hosts []HostJSON
	if err := json.NewDecoder(w.Body).Decode(&hosts); err != nil || len(hosts) != 1 {
		t.Fatalf("/api/hosts: %d %v %+v", w.Code, err, hosts)
	}
	ps := hosts[0].Pinholes
	if len(ps) != 2 || ps[0].ID != 3 || ps[0].Protocol != "tcp" || ps[0].Port != 8090 || ps[0].RemoteHost.IsValid() ||
		ps[0].RemainingSeconds < 3500 || ps[0].RemainingSeconds > 3570 || ps[1].Protocol != "udp" || ps[1].RemotePort != 3478 {
		t.Errorf("pinholes %+v", ps)
	}

	for _, path := range []string{"/hosts", "/hosts/" + testMAC} {
		page := do(t, s, "GET", path, "", basicAuth("secret")).Body.String()
		for _, want := range []string{
			"tcp/8090 on 2001:db8:1000:100::10, from anyone, 59 min left",
			"udp/3478 on 2001:db8:1000:100::10, asked for 2001:db8:ffff::10, port 3478 (open to anyone), 24 h 59 min left",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
		if strings.Contains(page, "tcp/8091") {
			t.Errorf("%s shows an expired pinhole", path)
		}
	}

	h.Pinholes, h.Policy.AppPinholes = nil, false
	if page := do(t, s, "GET", "/hosts/"+testMAC, "", basicAuth("secret")).Body.String(); !strings.Contains(page, "not allowed") {
		t.Error("the host's page does not say that app pinholes are off")
	}
	if page := do(t, s, "GET", "/hosts", "", basicAuth("secret")).Body.String(); strings.Contains(page, "App pinholes") {
		t.Error("the host list shows app pinholes of a host that may not open any")
	}
}

// PUT /api/hosts/{mac}/policy switches app pinholes on and off and leaves
// the rest of the policy as it was.
func TestPolicyAppPinholes(t *testing.T) {
	s, b := newTestServer(t)
	for _, on := range []bool{true, false} {
		body := `{"app_pinholes":false}`
		if on {
			body = `{"app_pinholes":true}`
		}
		if w := do(t, s, "PUT", "/api/hosts/"+testMAC+"/policy", body, basicAuth("secret")); w.Code != 200 {
			t.Fatalf("PUT %s: %d %s", body, w.Code, w.Body)
		}
		p := b.Snapshot().Hosts[testMAC].Policy
		if p.AppPinholes != on || !p.DNS64 || !p.V6OnlyPreferred {
			t.Errorf("after %s: %+v", body, p)
		}
	}
}
