package boottest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/ndp"

	"codeberg.org/monostack/gizmo/hardware"
	"codeberg.org/monostack/gizmo/image/builder"
	"codeberg.org/monostack/gizmo/image/instance"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

const gizmoPkg = "codeberg.org/monostack/gizmo/gizmo"

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// requireVM skips a boot test unless slow tests were asked for and it runs
// as root (network namespaces, tap devices). It installs qemu and the
// image tools when it can, else skips naming the packages, and fixes the
// build time so that the image is reproducible.
func requireVM(t *testing.T) {
	t.Helper()
	if os.Getenv("GIZMO_SLOW") == "" {
		t.Skip("slow: set GIZMO_SLOW=1")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, tap devices)")
	}
	depstest.Require(t, deps.Image, deps.QEMU)
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
}

// labConfig is config.json with the daemon's flags set to what the lab
// expects of a gizmo (its PREF64, the legacy LAN prefix, the dashboard on
// every address), plus extra flags such as the board's port names.
func labConfig(t *testing.T, extra ...string) instance.Config {
	t.Helper()
	cfg, err := instance.Load(filepath.Join(moduleRoot(), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.PackageConfig[gizmoPkg]
	pc.CommandLineFlags = append([]string{
		"-state-dir=/perm/gizmo",
		"-pref64=" + netlab.Pref64.String(),
		"-lan-ipv4=" + netlab.GizmoLANIPv4.String(),
		"-listen-web=[::]:80",
	}, extra...)
	cfg.PackageConfig[gizmoPkg] = pc
	return cfg
}

// qemuPorts names the qemu-amd64 VM's ports: virtio NIC 1 faces the ISP.
var qemuPorts = []string{"-wan=eth0", "-lan=eth1"}

// buildQEMUImage builds the qemu-amd64 image with the lab's config, the
// VM's port names and extra flags, and returns the qemu that boots it, the
// board and the image's path.
func buildQEMUImage(t *testing.T, extra ...string) (qemu string, board hardware.Board, img string) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	board, err = hardware.Lookup("qemu-amd64")
	if err != nil {
		t.Fatal(err)
	}
	img = filepath.Join(t.TempDir(), "gizmo.img")
	buildImage(t, board, labConfig(t, slices.Concat(qemuPorts, extra)...), img)
	return qemu, board, img
}

// buildImage builds board's image with cfg into img, with the boot test's
// password and update signing key.
func buildImage(t *testing.T, board hardware.Board, cfg instance.Config, img string) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := builder.Build(ctx, builder.Options{
		Config:    cfg,
		Board:     board,
		ModuleDir: moduleRoot(),
		Password:  "boot-test",
		UpdateKey: signingKey.Public().(ed25519.PublicKey),
	}, img); err != nil {
		t.Fatal(err)
	}
	t.Logf("image built in %v", time.Since(start).Round(time.Millisecond))
}

// vmLab brings the lab up in scenario ("" for the default) with gz-gizmo
// left without a daemon and made a patch panel for the VM's NICs, and takes
// it down in the test's cleanup. Other packages' lab tests may hold the machine-wide lab lock
// for a while; the VM's own deadline starts once the lab is ours.
func vmLab(t *testing.T, scenario string) *netlab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	l, err := netlab.Up(ctx, netlab.Options{NoGizmo: true, ModuleRoot: moduleRoot(), Scenario: scenario})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	patchPanel(t, ctx, l)
	return l
}

// solicitRAs solicits router advertisements in gz-lan-v6 every 3 s and
// hands each one heard, with its source, to check until check says done or
// fails, or ctx ends. listening, if not nil, is closed once the socket is
// open.
func solicitRAs(ctx context.Context, listening chan<- struct{}, check func(from netip.Addr, ra *ndp.RouterAdvertisement) (bool, error)) error {
	return netlab.WithNDP(netlab.NSLanV6, netlab.HostIf, func(conn *ndp.Conn, _ *net.Interface, _ netip.Addr) error {
		if listening != nil {
			close(listening)
		}
		for ctx.Err() == nil {
			if err := conn.WriteTo(&ndp.RouterSolicitation{}, nil, netip.MustParseAddr("ff02::2")); err != nil {
				return fmt.Errorf("router solicitation: %w", err)
			}
			deadline := time.Now().Add(3 * time.Second)
			if err := conn.SetReadDeadline(deadline); err != nil {
				return err
			}
			for time.Now().Before(deadline) {
				msg, _, from, err := conn.ReadFrom()
				if err != nil {
					break
				}
				ra, ok := msg.(*ndp.RouterAdvertisement)
				if !ok {
					continue
				}
				if done, err := check(from.WithZone(""), ra); err != nil || done {
					return err
				}
			}
		}
		return ctx.Err()
	})
}
