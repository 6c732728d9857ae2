package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// Every step ends up in exactly one batch, in order, and each namespace's
// sysctls run before any link is created in it.
func TestBatchesKeepOrder(t *testing.T) {
	steps := topologySteps()
	bs := batches(steps)
	var flat []string
	for _, b := range bs {
		if b.lines == nil {
			flat = append(flat, strings.Join(b.args, " "))
			continue
		}
		for _, l := range b.lines {
			if len(b.args) == 4 {
				l = "-n " + b.args[1] + " " + l
			}
			flat = append(flat, l)
		}
	}
	if len(flat) != len(steps) {
		t.Fatalf("%d lines in batches, %d steps", len(flat), len(steps))
	}
	for i, s := range steps {
		if flat[i] != strings.Join(s, " ") {
			t.Errorf("line %d = %q, step %q", i, flat[i], strings.Join(s, " "))
		}
	}
	if len(bs) > 20 {
		t.Errorf("%d batches; the point is to run few processes", len(bs))
	}
	firstLink := -1
	lastSysctl := -1
	for i, s := range flat {
		if strings.Contains(s, "sysctl") {
			lastSysctl = i
		}
		if strings.Contains(s, "type veth") && firstLink < 0 {
			firstLink = i
		}
	}
	if lastSysctl > firstLink {
		t.Errorf("sysctls (last at %d) must precede link creation (first at %d)", lastSysctl, firstLink)
	}
}

// renameNamespaces rewrites every gz-* namespace name in steps to
// prefix+name, so the topology can be built beside a running lab.
func renameNamespaces(steps [][]string, prefix string) [][]string {
	names := map[string]bool{}
	for _, ns := range Namespaces() {
		names[ns] = true
	}
	var out [][]string
	for _, s := range steps {
		var r []string
		for _, a := range s {
			if names[a] {
				a = prefix + a
			}
			r = append(r, a)
		}
		out = append(out, r)
	}
	return out
}

// scratchTopology builds the lab's topology under the scratch namespace
// names gzt-<tag>-<pid>-<name>, which need no lab lock, deletes them when
// the test ends, and returns the names' prefix.
func scratchTopology(t *testing.T, ctx context.Context, tag string) string {
	t.Helper()
	prefix := fmt.Sprintf("gzt-%s-%d-", tag, os.Getpid())
	t.Cleanup(func() {
		for _, ns := range Namespaces() {
			_ = exec.Command("ip", "netns", "del", prefix+ns).Run()
		}
	})
	if err := runBatches(ctx, batches(renameNamespaces(topologySteps(), prefix))); err != nil {
		t.Fatal(err)
	}
	return prefix
}

// The topology builds, and the ISP reaches every internet server over the
// transit link, under scratch namespace names (no lab lock needed).
func TestTopologyBuilds(t *testing.T) {
	testns.NeedRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefix := scratchTopology(t, ctx, "topo")
	for _, s := range Servers() {
		out, err := Exec(ctx, prefix+NSISP, "ping", "-c", "1", "-W", "2", s.Addr.String())
		if err != nil {
			t.Errorf("ping %s from the ISP: %v\n%s", s.Addr, err, out)
		}
	}
	// The gizmo's WAN link-local follows from its fixed MAC.
	out, err := Exec(ctx, prefix+NSGizmo, "ip", "-6", "addr", "show", "dev", GizmoWAN)
	if err != nil || !strings.Contains(string(out), GizmoWANLinkLocal.String()+"/64") {
		t.Errorf("uplink0 link-local: %v\n%s", err, out)
	}
	// The LAN hosts share one bridge: gz-lan-v6 reaches the gizmo's lan0.
	out, err = Exec(ctx, prefix+NSLanV6, "ping", "-c", "1", "-W", "2", GizmoLANLinkLocal.String()+"%eth0")
	if err != nil {
		t.Errorf("ping the gizmo's lan0 from gz-lan-v6: %v\n%s", err, out)
	}
	// The legacy host has no IPv6 at all.
	out, _ = Exec(ctx, prefix+NSLanLegacy, "ip", "-6", "addr")
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("gz-lan-legacy has IPv6 addresses:\n%s", out)
	}
}
