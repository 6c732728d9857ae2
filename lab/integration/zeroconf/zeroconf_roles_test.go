package zeroconf

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// Issue 9, role detection: started without -wan/-lan on ports named eth1
// (to the ISP) and eth0 (to the switch), the gizmo finds the port that
// hears the upstream, renames it uplink0, bridges the other into lan0, and
// the LAN hosts get its RA.
func TestRolesDetectedAtStart(t *testing.T) {
	l := upScenario(t, "roles")
	ctx := testContext(t, 2*time.Minute)
	for _, a := range l.GizmoArgv() {
		if a == "-wan" || a == "-lan" {
			t.Fatalf("the gizmo runs with %s: %v", a, l.GizmoArgv())
		}
	}
	st := waitStatus(t, ctx, "roles and a delegation", func(s status) bool {
		return s.WAN.Interface != "" && s.Delegated != nil
	})
	if st.WAN.Interface != "uplink0" || st.LAN.Interface != "lan0" {
		t.Errorf("roles: WAN %q, LAN %q; want uplink0, lan0", st.WAN.Interface, st.LAN.Interface)
	}
	// The renamed WAN is the former eth1: the port with the WAN MAC.
	out, err := l.Exec(ctx, netlab.NSGizmo, "ip", "-o", "link", "show", "dev", "uplink0")
	if err != nil || !strings.Contains(string(out), netlab.MACGizmoWAN) {
		t.Errorf("uplink0 is not the port towards the ISP (MAC %s): %v %s", netlab.MACGizmoWAN, err, out)
	}
	out, err = l.Exec(ctx, netlab.NSGizmo, "ip", "-o", "link", "show", "master", "lan0")
	if err != nil || !strings.Contains(string(out), " eth0") || !strings.Contains(string(out), netlab.MACGizmoLAN) {
		t.Errorf("eth0 (the switch port) is not bridged into lan0: %v %s", err, out)
	}
	p, _ := netip.ParsePrefix(st.Delegated.Prefix)
	checkServedV6(t, ctx, l, p)
	waitDeployment(t, ctx, l, "router")
}
