package roles

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
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
	gz, isp := gizmoAndISP(t, "watch")
	testns.IP(t, "-n", gz, "link", "add", "eth0", "type", "veth", "peer", "name", "x0")
	testns.IP(t, "-n", gz, "link", "add", "eth1", "type", "veth", "peer", "name", "wan", "netns", isp)
	testns.IP(t, "-n", gz, "link", "set", "x0", "up")
	testns.IP(t, "-n", isp, "link", "set", "wan", "up")
	testns.IP(t, "-n", isp, "addr", "add", "2001:db8:0:1::1/64", "dev", "wan")
	testns.Sysctl(t, gz, "net.ipv6.conf.all.forwarding=1")

	testns.RunChild(t, gz, "TestWatchChild", "GZT_WATCH_CHILD=1", "GZT_WATCH_NS="+gz, "GZT_WATCH_ISP="+isp, "GZT_WATCH_DIR="+t.TempDir())
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

// TestWatchPinnedKeepsTheRoles: the WAN (uplink0) has no carrier, and a
// router advertises a default route behind the LAN port eth0. Unpinned,
// the watch hands eth0 the WAN role once the WAN has been gone for
// WANGone; pinned (the WAN carried a delegation or a lease), it keeps the
// roles, leaves eth0 in the bridge and reports the rogue.
func TestWatchPinnedKeepsTheRoles(t *testing.T) {
	gz, rogue := gizmoAndISP(t, "pin")
	testns.IP(t, "-n", gz, "link", "add", "uplink0", "type", "veth", "peer", "name", "modem")
	testns.IP(t, "-n", gz, "link", "add", "eth0", "type", "veth", "peer", "name", "lanhost", "netns", rogue)
	testns.IP(t, "-n", rogue, "link", "set", "lanhost", "address", "02:00:00:00:99:01", "up")
	testns.IP(t, "-n", rogue, "addr", "add", "2001:db8:0:1::1/64", "dev", "lanhost")
	testns.Sysctl(t, gz, "net.ipv6.conf.all.forwarding=1")

	for _, pinned := range []string{"0", "1"} {
		testns.RunChild(t, gz, "TestWatchPinnedChild", "GZT_PIN_CHILD=1", "GZT_PIN_NS="+gz, "GZT_PIN_ROGUE="+rogue, "GZT_PIN_DIR="+t.TempDir(), "GZT_PINNED="+pinned)
	}
}

func TestWatchPinnedChild(t *testing.T) {
	if os.Getenv("GZT_PIN_CHILD") != "1" {
		t.Skip("runs only as the child of TestWatchPinnedKeepsTheRoles")
	}
	rogue, dir, pinned := os.Getenv("GZT_PIN_ROGUE"), os.Getenv("GZT_PIN_DIR"), os.Getenv("GZT_PINNED") == "1"
	r := Roles{WAN: WANName, LANPorts: []string{"eth0"}}
	if _, _, err := Apply(r); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	startRadvd(t, rogue, "lanhost", dir)
	var mu sync.Mutex
	var rogues []Rogue
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := WatchConfig{
		Roles: r, Ports: []string{WANName, "eth0"}, Bridge: LANName, Logger: log,
		Thresholds: Thresholds{Settle: time.Second, WANGone: 2 * time.Second, Rounds: 2},
		Pinned:     func() bool { return pinned },
		OnRogue: func(r Rogue) {
			mu.Lock()
			rogues = append(rogues, r)
			mu.Unlock()
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	d, err := Watch(ctx, cfg)
	if !pinned {
		if err != nil || d.Roles.WAN != "eth0" {
			t.Fatalf("unpinned: decision %+v, %v; want eth0 to take the WAN", d, err)
		}
		return
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pinned: decision %+v, %v; want none", d, err)
	}
	out, _ := exec.Command("ip", "-br", "link", "show", "master", LANName).CombinedOutput()
	if !strings.Contains(string(out), "eth0") {
		t.Errorf("pinned: eth0 left the bridge:\n%s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rogues) == 0 {
		t.Fatal("pinned: no rogue reported")
	}
	if g := rogues[0]; g.Port != "eth0" || g.Signal != SignalRouter || g.SrcMAC.String() != "02:00:00:00:99:01" || !g.From.IsLinkLocalUnicast() {
		t.Errorf("rogue %+v; want eth0, a default router, from 02:00:00:00:99:01", g)
	}
	// radvd sends every 3-4 s for 15 s: reported at most once per
	// rogueReportEvery.
	if n := len(rogues); n > int(15*time.Second/rogueReportEvery)+1 {
		t.Errorf("%d rogue reports in 15 s", n)
	}
}
