package zeroconf

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// rolesStatus is the "roles" part of GET /api/status.
type rolesStatus struct {
	Roles *struct {
		WANPort    string    `json:"wan_port"`
		LANPorts   []string  `json:"lan_ports"`
		Since      time.Time `json:"since"`
		Reason     string    `json:"reason"`
		Evaluation string    `json:"evaluation"`
		Changes    int       `json:"changes"`
	} `json:"roles"`
	Deployment string `json:"deployment"`
	Delegated  *struct {
		Prefix string `json:"prefix"`
	} `json:"delegated_prefix"`
}

func waitRoles(t *testing.T, ctx context.Context, what string, ok func(rolesStatus) bool) rolesStatus {
	t.Helper()
	return waitStatusAs(t, ctx, what, func(s rolesStatus) bool { return s.Roles != nil && ok(s) })
}

// stillNoWAN checks, for the length of ctx, that the gizmo keeps running
// without a WAN: the hysteresis must ride out what just happened.
func stillNoWAN(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	answers := 0
	for ctx.Err() == nil {
		var s rolesStatus
		if err := apiJSON(ctx, "/api/status", &s); err == nil && s.Roles != nil {
			answers++
			if s.Roles.WANPort != "" {
				t.Fatalf("%s: the gizmo took %q as its WAN: %+v", what, s.Roles.WANPort, *s.Roles)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	if answers == 0 {
		t.Fatalf("%s: the dashboard never answered", what)
	}
}

// Issue 9, roles re-evaluated on link changes, with hysteresis: the gizmo
// starts without -wan/-lan while the cable to the ISP is unplugged. It runs
// its LAN without a WAN (both ports bridged, the dashboard up). A plug-in
// shorter than the hysteresis does not make a WAN; plugged in for good, the
// port towards the ISP becomes uplink0 within seconds, the delegation comes
// and the LAN host gets global addresses. A short WAN flap afterwards keeps
// the roles.
func TestRolesReevaluated(t *testing.T) {
	l := upScenario(t, "roles-unplugged")
	ctx := testContext(t, 2*time.Minute)

	st := waitRoles(t, ctx, "the gizmo running without a WAN", func(s rolesStatus) bool { return true })
	if st.Roles.WANPort != "" || len(st.Roles.LANPorts) != 2 {
		t.Fatalf("with the ISP unplugged: roles %+v; want no WAN and both ports in the LAN", *st.Roles)
	}
	out, err := l.Exec(ctx, netlab.NSGizmo, "ip", "-o", "link", "show", "master", "lan0")
	if err != nil || !strings.Contains(string(out), " eth0") || !strings.Contains(string(out), " eth1") {
		t.Errorf("without a WAN, eth0 and eth1 are not both in lan0: %v %s", err, out)
	}
	waitDeployment(t, ctx, l, "no-upstream")

	// A plug-in of one second: the port is probed and hears the ISP, but
	// its carrier lasts less than Settle + Rounds (roles.DefaultThresholds).
	if err := l.SetISPLink(ctx, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := l.SetISPLink(ctx, false); err != nil {
		t.Fatal(err)
	}
	quiet, cancel := context.WithTimeout(ctx, 8*time.Second)
	stillNoWAN(t, quiet, "after a one-second plug-in")
	cancel()

	// Plugged in for good.
	plugged := time.Now()
	if err := l.SetISPLink(ctx, true); err != nil {
		t.Fatal(err)
	}
	st = waitRoles(t, ctx, "eth1 as the WAN and a delegation", func(s rolesStatus) bool {
		return s.Roles.WANPort == "eth1" && s.Delegated != nil
	})
	t.Logf("eth1 took the WAN role at %s, %s after the plug-in; a delegation by %s", st.Roles.Since.Format(time.TimeOnly),
		st.Roles.Since.Sub(plugged).Round(100*time.Millisecond), time.Since(plugged).Round(100*time.Millisecond))
	if st.Roles.Changes != 1 || !strings.Contains(st.Roles.Reason, "eth1 hears a default router") {
		t.Errorf("roles after the plug-in: %+v; want one change, because eth1 hears a default router", *st.Roles)
	}
	out, err = l.Exec(ctx, netlab.NSGizmo, "ip", "-o", "link", "show", "dev", "uplink0")
	if err != nil || !strings.Contains(string(out), netlab.MACGizmoWAN) {
		t.Errorf("uplink0 is not the port towards the ISP (MAC %s): %v %s", netlab.MACGizmoWAN, err, out)
	}
	out, err = l.Exec(ctx, netlab.NSGizmo, "ip", "-o", "link", "show", "master", "lan0")
	if err != nil || !strings.Contains(string(out), " eth0") || strings.Contains(string(out), "uplink0") {
		t.Errorf("lan0 should hold eth0 and not the WAN: %v %s", err, out)
	}
	p, _ := netip.ParsePrefix(st.Delegated.Prefix)
	checkServedV6(t, ctx, l, p)
	waitDeployment(t, ctx, l, "router")
	// The NAT64 and DNS64 of the new run work on the new uplink0.
	full := waitStatus(t, ctx, "the DNS64 address and a WAN IPv4 lease", func(s status) bool {
		return s.LAN.DNS["rdnss"] != "" && s.WAN.IPv4 != ""
	})
	body, err := fetchByName(ctx, l, netlab.NSLanV6, rdnss(t, full), "v4only.example.test")
	if err != nil {
		t.Fatalf("gz-lan-v6 fetching v4only through DNS64 + NAT64 after the roles change: %v", err)
	}
	if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
		t.Errorf("v4only answered %q; want server=%s", body, netlab.V4OnlyServer)
	}

	// A short WAN flap: the roles stay (WANGone).
	since := st.Roles.Since
	if err := l.SetISPLink(ctx, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := l.SetISPLink(ctx, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	st = waitRoles(t, ctx, "the status after a WAN flap", func(rolesStatus) bool { return true })
	if st.Roles.WANPort != "eth1" || !st.Roles.Since.Equal(since) || st.Roles.Changes != 1 {
		t.Errorf("after a two-second WAN flap the roles changed: %+v", *st.Roles)
	}
	if !strings.Contains(st.Roles.Evaluation, "WAN carrier") {
		t.Errorf("the last evaluation is not the WAN's carrier change: %q", st.Roles.Evaluation)
	}

	// A router on the LAN side while the WAN is plugged in: gz-lan-v6
	// advertises a default route for a few seconds (longer than Settle +
	// Rounds). The gizmo notes it and keeps its roles.
	rogue, stopRogue := context.WithTimeout(ctx, 6*time.Second)
	l.Exec(rogue, netlab.NSLanV6, filepath.Join(binDir, "lab"), "isp-ra", "-interface", netlab.HostIf)
	stopRogue()
	st = waitRoles(t, ctx, "the status after a stray router on the LAN", func(s rolesStatus) bool {
		return strings.Contains(s.Roles.Evaluation, "heard a default router")
	})
	if st.Roles.WANPort != "eth1" || !st.Roles.Since.Equal(since) || st.Roles.Changes != 1 {
		t.Errorf("a router on the LAN side moved the roles: %+v", *st.Roles)
	}
	if !strings.Contains(st.Roles.Evaluation, "eth0: heard a default router") || !strings.Contains(st.Roles.Evaluation, "the roles stay") {
		t.Errorf("evaluation of the stray router: %q", st.Roles.Evaluation)
	}
}
