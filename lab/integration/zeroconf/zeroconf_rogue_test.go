package zeroconf

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// A LAN must not be able to take over the router. Once the WAN has carried
// a delegation or a DHCPv4 lease, upstream signals heard on a LAN port never
// move the WAN role by themselves: not while the WAN is dark for longer than
// the run-time re-evaluation's WANGone (a modem rebooting), not however
// long the rogue talks. The attacker is the lab binary's rogue-upstream
// (lab/hostile_wan.go) on gz-lan-v6: a default router (RA) and a DHCPv4
// server, as a home router plugged in the wrong way round would be.

// rogueStatus is the roles part of /api/status with the rogue sighting.
type rogueStatus struct {
	Roles *struct {
		WANPort       string    `json:"wan_port"`
		Since         time.Time `json:"since"`
		Reason        string    `json:"reason"`
		Changes       int       `json:"changes"`
		Pinned        bool      `json:"pinned"`
		RogueUpstream *struct {
			Port      string    `json:"port"`
			Kind      string    `json:"kind"`
			At        time.Time `json:"at"`
			SourceMAC string    `json:"source_mac"`
			Source    string    `json:"source"`
		} `json:"rogue_upstream"`
	} `json:"roles"`
	Delegated *struct {
		Prefix string `json:"prefix"`
	} `json:"delegated_prefix"`
	WAN statusWAN `json:"wan"`
}

func rogueRoles(ctx context.Context) (rogueStatus, error) {
	var s rogueStatus
	return s, apiJSON(ctx, "/api/status", &s)
}

// startRogue runs `lab rogue-upstream args...` on gz-lan-v6 until the
// returned stop is called (or the test ends).
func startRogue(t *testing.T, l *netlab.Lab, args ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		argv := append([]string{filepath.Join(binDir, "lab"), "rogue-upstream", "-interface", netlab.HostIf}, args...)
		out, err := l.Exec(ctx, netlab.NSLanV6, argv...)
		if ctx.Err() == nil {
			t.Errorf("rogue-upstream ended early: %v\n%s", err, out)
		}
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// holdRoles checks, for d, that the WAN stays on want and that the roles do
// not change; it returns the last status.
func holdRoles(t *testing.T, ctx context.Context, d time.Duration, want string, since time.Time) rogueStatus {
	t.Helper()
	deadline := time.Now().Add(d)
	var last rogueStatus
	answers := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if s, err := rogueRoles(ctx); err == nil && s.Roles != nil {
			answers++
			last = s
			if s.Roles.WANPort != want || !s.Roles.Since.Equal(since) {
				t.Fatalf("after %s of the outage the WAN moved: roles %+v", time.Until(deadline).Round(time.Second), *s.Roles)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if answers == 0 {
		t.Fatal("the dashboard never answered during the outage")
	}
	return last
}

// waitProvenWAN waits for the detected WAN (eth1) to carry a delegation
// and a DHCPv4 lease.
func waitProvenWAN(t *testing.T, ctx context.Context) rogueStatus {
	t.Helper()
	var st rogueStatus
	err := netlab.WaitFor(ctx, "eth1 as the WAN with a delegation and a DHCPv4 lease", func(ctx context.Context) (bool, error) {
		s, err := rogueRoles(ctx)
		if err != nil || s.Roles == nil {
			return false, nil
		}
		st = s
		return s.Roles.WANPort == "eth1" && s.Delegated != nil && s.WAN.IPv4 != "", nil
	})
	if err != nil {
		t.Fatalf("%v; last status %+v", err, st)
	}
	return st
}

// TestRolesStayWithRogueUpstream: the ISP's link is dark for 40 s while a
// rogue upstream talks on the LAN side. Roles that are not pinned go to
// any port whose probe hears an upstream server (a default router, a
// DHCPv4 server) once the WAN has been dark for WANGone (10 s) and three
// rounds, and the ISP's port joins lan0, where the management plane is
// open. A WAN that carried the ISP's delegation and lease is pinned: the
// roles stay, and the dashboard names the rogue.
func TestRolesStayWithRogueUpstream(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		kind string
		// flap makes gz-lan-legacy's dhcpcd ask again before the
		// outage, so that the rogue DHCPv4 server answers a LAN host.
		flap bool
	}{
		// The RA starts it all: heard while the WAN is dark, the LAN port
		// is probed, and the probe finds a router and a DHCPv4 server.
		{"a default router and a DHCPv4 server", nil, "", false},
		// A DHCPv4 server only answers: it was heard answering a LAN
		// host while the WAN was up, which was kept until the outage.
		{"a DHCPv4 server that answered a LAN host", []string{"-ra=false"}, "DHCPv4", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := upScenario(t, "roles")
			ctx := testContext(t, 3*time.Minute)
			st := waitProvenWAN(t, ctx)
			since := st.Roles.Since

			startRogue(t, l, tc.args...)
			if tc.flap {
				for _, state := range []string{"down", "up"} {
					if out, err := l.Exec(ctx, netlab.NSLanLegacy, "ip", "link", "set", netlab.HostIf, state); err != nil {
						t.Fatalf("ip link set %s: %v\n%s", state, err, out)
					}
				}
				err := netlab.WaitFor(ctx, "the gizmo to hear the rogue DHCPv4 server", func(ctx context.Context) (bool, error) {
					b, err := l.GizmoLog()
					return err == nil && strings.Contains(string(b), "heard a DHCPv4 server"), nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := l.SetISPLink(ctx, false); err != nil {
				t.Fatal(err)
			}
			last := holdRoles(t, ctx, 40*time.Second, "eth1", since)
			if !last.Roles.Pinned {
				t.Errorf("the WAN is not reported pinned: %+v", *last.Roles)
			}
			r := last.Roles.RogueUpstream
			switch {
			case r == nil:
				t.Errorf("no rogue upstream in the status: %+v", *last.Roles)
			case r.Port != "eth0" || r.SourceMAC != netlab.MACLanV6 || (tc.kind != "" && r.Kind != tc.kind) || time.Since(r.At) > time.Minute:
				t.Errorf("rogue upstream %+v; want port eth0, source MAC %s, kind %q, seen within the minute", *r, netlab.MACLanV6, tc.kind)
			}
			out, err := l.Exec(ctx, netlab.NSGizmo, "ip", "-o", "link", "show", "master", "lan0")
			if err != nil || !strings.Contains(string(out), " eth0") || strings.Contains(string(out), "uplink0") {
				t.Errorf("lan0 should still hold eth0 and not the WAN: %v %s", err, out)
			}
			if err := l.SetISPLink(ctx, true); err != nil {
				t.Fatal(err)
			}
			if st := holdRoles(t, ctx, 5*time.Second, "eth1", since); st.Roles.Changes != 0 {
				t.Errorf("roles changed %d times", st.Roles.Changes)
			}
		})
	}
}

// TestRolesAfterRebootAndOwnerRequest: the ways the WAN may still move. A
// reboot with the proven WAN plugged in keeps it, whatever the LAN says; a
// reboot with it unplugged runs the normal detection (here the rogue's
// port wins, as a moved cable's would); and the owner may move the role
// from the logged-in dashboard (POST /api/roles).
func TestRolesAfterRebootAndOwnerRequest(t *testing.T) {
	l := upScenario(t, "roles")
	ctx := testContext(t, 5*time.Minute)
	waitProvenWAN(t, ctx)
	stopRogue := startRogue(t, l)

	if err := l.GizmoRestart(ctx); err != nil {
		t.Fatal(err)
	}
	st := waitRoles(t, ctx, "roles after a restart with the WAN plugged in", func(s rolesStatus) bool { return s.Roles.Reason != "" })
	if st.Roles.WANPort != "uplink0" && st.Roles.WANPort != "eth1" {
		t.Errorf("after a restart with the proven WAN plugged in, the WAN is %q: %+v", st.Roles.WANPort, *st.Roles)
	}
	out, err := l.Exec(ctx, netlab.NSGizmo, "ip", "-o", "link", "show", "dev", "uplink0")
	if err != nil || !strings.Contains(string(out), netlab.MACGizmoWAN) {
		t.Errorf("uplink0 is not the port towards the ISP (MAC %s): %v %s", netlab.MACGizmoWAN, err, out)
	}

	// Reboot with the old WAN unplugged: normal detection.
	if err := l.GizmoStop(); err != nil {
		t.Fatal(err)
	}
	if err := l.SetISPLink(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := l.GizmoStart(ctx); err != nil {
		t.Fatal(err)
	}
	st = waitRoles(t, ctx, "detection with the old WAN unplugged", func(s rolesStatus) bool { return s.Roles.WANPort == "eth0" })
	if !strings.Contains(st.Roles.Reason, "detected at start") {
		t.Errorf("roles %+v; want them detected at start", *st.Roles)
	}
	stopRogue()

	// The owner moves the WAN back to the port towards the ISP.
	if err := l.SetISPLink(ctx, true); err != nil {
		t.Fatal(err)
	}
	var lan string
	for _, p := range st.Roles.LANPorts {
		lan = p // the former WAN, by its present name
	}
	if code := postRoles(t, ctx, l, `{"wan":"`+lan+`"}`, true); code != http.StatusAccepted {
		t.Fatalf("POST /api/roles: %d", code)
	}
	st = waitRoles(t, ctx, "the owner's roles", func(s rolesStatus) bool {
		return strings.Contains(s.Roles.Reason, "dashboard") && s.Delegated != nil
	})
	out, err = l.Exec(ctx, netlab.NSGizmo, "ip", "-o", "link", "show", "dev", "uplink0")
	if err != nil || !strings.Contains(string(out), netlab.MACGizmoWAN) {
		t.Errorf("after the owner's request uplink0 is not the port towards the ISP (MAC %s): %v %s", netlab.MACGizmoWAN, err, out)
	}
	if code := postRoles(t, ctx, l, `{"wan":"eth0"}`, false); code != http.StatusUnauthorized {
		t.Errorf("POST /api/roles without the password: %d, want 401", code)
	}
}

// postRoles sends a roles change to the dashboard over HTTPS, with the
// appliance password when auth is set, and returns the status code.
func postRoles(t *testing.T, ctx context.Context, l *netlab.Lab, body string, auth bool) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://[::1]/api/roles", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		pw, err := l.GizmoPassword()
		if err != nil {
			t.Fatalf("appliance password: %v", err)
		}
		req.SetBasicAuth("gizmo", pw)
	}
	c, err := l.DashboardClient(netlab.NSGizmo)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
