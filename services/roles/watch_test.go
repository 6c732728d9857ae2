package roles

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
)

func startRadvd(t *testing.T, ns, iface, dir string) {
	t.Helper()
	conf := filepath.Join(dir, ns+"-radvd.conf")
	os.WriteFile(conf, []byte(`interface `+iface+` { AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 4; AdvDefaultLifetime 1800; prefix 2001:db8:0:1::/64 {}; };`), 0o644)
	testns.StartCommand(t, testns.Command(ns, "radvd", "-n", "-C", conf, "-p", filepath.Join(dir, ns+"-radvd.pid"), "-m", "stderr"))
}

// TestWatchHearsAnUplinkOnABridgedPort runs the gizmo's side in a namespace
// with two ports bridged into lan0 and no WAN. The gizmo's own RAs (radvd on
// lan0, router lifetime 1800 s) leave through both ports and must not count.
// Then a router appears behind eth1 without any carrier change: the passive
// listener hears it, the port is probed out of the bridge and becomes the WAN.
func TestWatchHearsAnUplinkOnABridgedPort(t *testing.T) {
	testns.NeedRoot(t)
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	gz, isp := gizmoAndISP(t, "watch")
	testns.IP(t, "-n", gz, "link", "add", "eth0", "type", "veth", "peer", "name", "x0")
	testns.IP(t, "-n", gz, "link", "add", "eth1", "type", "veth", "peer", "name", "wan", "netns", isp)
	testns.IP(t, "-n", gz, "link", "set", "x0", "up")
	testns.IP(t, "-n", isp, "link", "set", "wan", "up")
	testns.IP(t, "-n", isp, "addr", "add", "2001:db8:0:1::1/64", "dev", "wan")
	testns.Sysctl(t, gz, "net.ipv6.conf.all.forwarding=1")

	cmd := testns.Command(gz, os.Args[0], "-test.run=^TestWatchChild$", "-test.v")
	cmd.Env = append(os.Environ(), "GZT_WATCH_CHILD=1", "GZT_WATCH_NS="+gz, "GZT_WATCH_ISP="+isp, "GZT_WATCH_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("the watch in the namespace failed: %v\n%s", err, out)
	}
}

func TestWatchChild(t *testing.T) {
	if os.Getenv("GZT_WATCH_CHILD") != "1" {
		t.Skip("runs only as the child of TestWatchHearsAnUplinkOnABridgedPort")
	}
	gz, isp, dir := os.Getenv("GZT_WATCH_NS"), os.Getenv("GZT_WATCH_ISP"), os.Getenv("GZT_WATCH_DIR")
	noWAN := Roles{LANPorts: []string{"eth0", "eth1"}}
	if _, _, err := Apply(noWAN); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !PlaceholderWAN() {
		t.Fatal("roles without a WAN: uplink0 is not the placeholder")
	}
	// The gizmo's own RAs, with a default route, out of both ports.
	startRadvd(t, gz, LANName, dir)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := WatchConfig{Roles: noWAN, Ports: []string{"eth0", "eth1"}, Bridge: LANName, Logger: log}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	d, err := Watch(ctx, cfg)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with only the gizmo's own RAs on the LAN: decision %+v, %v; want none", d, err)
	}

	startRadvd(t, isp, "wan", dir)
	ctx, cancel = context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	d, err = Watch(ctx, cfg)
	if err != nil {
		t.Fatalf("a router behind eth1: %v", err)
	}
	if d.Roles.WAN != "eth1" || strings.Join(d.Roles.LANPorts, ",") != "eth0" {
		t.Errorf("decision %+v; want WAN eth1, LAN eth0", d)
	}
	out, _ := exec.Command("ip", "-br", "link", "show", "master", LANName).CombinedOutput()
	if strings.Contains(string(out), "eth1") || !strings.Contains(string(out), "eth0") {
		t.Errorf("eth1 should be out of the bridge (probed) and eth0 in it:\n%s", out)
	}
	if _, _, err := Apply(d.Roles); err != nil {
		t.Fatalf("Apply(%v): %v", d.Roles, err)
	}
	if PlaceholderWAN() {
		t.Error("after a real WAN: uplink0 is still the placeholder")
	}
	out, _ = exec.Command("ip", "-o", "link", "show", "dev", WANName).CombinedOutput()
	if strings.Contains(string(out), "master") {
		t.Errorf("the new WAN is in a bridge: %s", out)
	}
}
