package roles

import (
	"context"
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

// gizmoAndISP creates two namespaces, gzt-<name>-* for the gizmo's side
// and gzt-<name>isp-* for the upstream, removed when the test ends. It
// skips without root, and installs the lab's Debian packages (radvd, Kea)
// when it can, else skips naming them.
func gizmoAndISP(t *testing.T, name string) (gz, isp string) {
	t.Helper()
	testns.NeedRoot(t)
	depstest.Require(t, deps.Lab)
	return testns.New(t, name), testns.New(t, name+"isp")
}

// TestDetectFindsTheRouter builds a gizmo namespace with three ports, one of
// which leads to a namespace where radvd advertises a default route, and
// checks that detection and Apply give that port the WAN role.
func TestDetectFindsTheRouter(t *testing.T) {
	gz, isp := gizmoAndISP(t, "roles")
	testns.IP(t, "-n", gz, "link", "add", "eth0", "type", "veth", "peer", "name", "x0")
	testns.IP(t, "-n", gz, "link", "add", "eth1", "type", "veth", "peer", "name", "wan", "netns", isp)
	testns.IP(t, "-n", gz, "link", "add", "eth2", "type", "veth", "peer", "name", "x2")
	for _, l := range []string{"x0", "x2"} {
		testns.IP(t, "-n", gz, "link", "set", l, "up")
	}
	testns.IP(t, "-n", isp, "link", "set", "wan", "up")
	testns.IP(t, "-n", isp, "addr", "add", "2001:db8:0:1::1/64", "dev", "wan")
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	os.WriteFile(conf, []byte(`interface wan { AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 10; prefix 2001:db8:0:1::/64 {}; };`), 0o644)
	testns.StartCommand(t, testns.Command(isp, "radvd", "-n", "-C", conf, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr"))
	// radvd answers only once its interface has a usable link-local
	// address, which needs carrier (eth1 up) and DAD. On a busy machine that
	// took longer than the probe's three solicitations, so wait for it here:
	// the test is about detection, not about radvd's start-up.
	testns.IP(t, "-n", gz, "link", "set", "eth1", "up")
	testns.WaitLinkLocal(t, isp, "wan")

	// Namespaces are per thread and Detect runs goroutines, so the detection
	// runs in a child process started inside the namespace.
	testns.RunChild(t, gz, "TestDetectChild", "GZT_ROLES_CHILD=1")
}

func TestDetectChild(t *testing.T) {
	if os.Getenv("GZT_ROLES_CHILD") != "1" {
		t.Skip("runs only as the child of TestDetectFindsTheRouter")
	}
	ports, err := Ports()
	if err != nil {
		t.Fatal(err)
	}
	// The veth peers x0 and x2 are ports too (the test gives them carrier).
	if strings.Join(ports, ",") != "eth0,eth1,eth2,x0,x2" {
		t.Fatalf("Ports() = %v", ports)
	}
	ports = []string{"eth0", "eth1", "eth2"}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, ev, err := Detect(context.Background(), ports, 8*time.Second, log)
	if err != nil {
		t.Fatalf("Detect: %v (evidence %+v)", err, ev)
	}
	if r.WAN != "eth1" || strings.Join(r.LANPorts, ",") != "eth0,eth2" {
		t.Fatalf("roles = %v (evidence %+v)", r, ev)
	}
	wan, lan, err := Apply(r)
	if err != nil || wan != WANName || lan != LANName {
		t.Fatalf("Apply = %s, %s, %v", wan, lan, err)
	}
	out, _ := exec.Command("ip", "-br", "link").CombinedOutput()
	for _, want := range []string{"uplink0", "lan0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s missing after Apply:\n%s", want, out)
		}
	}
	out, _ = exec.Command("ip", "-br", "link", "show", "master", "lan0").CombinedOutput()
	if !strings.Contains(string(out), "eth0") || !strings.Contains(string(out), "eth2") {
		t.Errorf("LAN ports not bridged:\n%s", out)
	}
	// Applying the same roles again (a restart) changes nothing.
	if _, _, err := Apply(Roles{WAN: WANName, LANPorts: []string{"eth0", "eth2"}}); err != nil {
		t.Errorf("second Apply: %v", err)
	}
}
