package boottest

import (
	"context"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/hardware"
	"codeberg.org/monostack/gizmo/image/builder"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

// TestBootQEMUVLAN boots the qemu-amd64 image with -wan-vlan 7 in the lab's
// "vlan-wan" scenario, where the ISP serves only on VLAN 7 and drops every
// untagged frame. It checks what the lab's namespace test cannot: that
// gokrazy's kernel (no 8021q) runs the tagger's tcx programs and that the
// virtio NIC passes VLAN 7 (a hardware VLAN filter) once the gizmo holds it
// promiscuous. The console shows the uplink on VLAN 7, Kea delegates a
// prefix and leases an address to the VM's WAN MAC, and gz-lan-v6 hears
// the gizmo's RA with PREF64.
func TestBootQEMUVLAN(t *testing.T) {
	if os.Getenv("GIZMO_SLOW") == "" {
		t.Skip("slow: set GIZMO_SLOW=1")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, tap devices)")
	}
	depstest.Require(t, deps.Image, deps.QEMU)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	board, err := hardware.Lookup("qemu-amd64")
	if err != nil {
		t.Fatal(err)
	}
	cfg := labConfig(t)
	pc := cfg.PackageConfig[gizmoPkg]
	pc.CommandLineFlags = append(pc.CommandLineFlags, "-wan-vlan=7")
	cfg.PackageConfig[gizmoPkg] = pc
	img := filepath.Join(t.TempDir(), "gizmo.img")
	buildCtx, cancelBuild := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelBuild()
	if _, err := builder.Build(buildCtx, builder.Options{
		Config: cfg, Board: board, ModuleDir: moduleRoot(), Password: "boot-test",
		UpdateKey: signingKey.Public().(ed25519.PublicKey),
	}, img); err != nil {
		t.Fatal(err)
	}

	labCtx, cancelLab := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancelLab()
	l, err := netlab.Up(labCtx, netlab.Options{NoGizmo: true, ModuleRoot: moduleRoot(), Scenario: "vlan-wan"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	patchPanel(t, ctx, l)
	start := time.Now()
	serial := filepath.Join(t.TempDir(), "serial.log")
	startVM(t, qemu, img, serial)

	for _, want := range []string{
		`gokrazy: attempt 0, starting ["/user/gizmo"`,
		`msg="uplink on an 802.1Q VLAN" interface=eth0 vlan=7 from=flag`,
	} {
		if err := waitSerial(ctx, serial, want); err != nil {
			t.Fatalf("serial console: %v", err)
		}
	}
	if err := netlab.WaitFor(ctx, "Kea to delegate a prefix and lease an address over VLAN 7", func(context.Context) (bool, error) {
		ps, err := l.DelegatedPrefixes()
		if err != nil || len(ps) == 0 {
			return false, err
		}
		v4, err := l.KeaLeases4()
		for _, le := range v4 {
			if strings.EqualFold(le.ClientID, netlab.MACGizmoWAN) {
				return true, nil
			}
		}
		return false, err
	}); err != nil {
		t.Fatal(err)
	}
	ps, _ := l.DelegatedPrefixes()
	v4, _ := l.KeaLeases4()
	t.Logf("over VLAN 7 after %v: Kea delegated %v, leased %v", time.Since(start).Round(time.Second), ps, v4)
	router, pref64 := waitRAWithPREF64(t, ctx)
	t.Logf("gz-lan-v6 hears %s with PREF64 %s", router, pref64)
	if pref64 != netlab.Pref64 {
		t.Errorf("PREF64 %s, want %s", pref64, netlab.Pref64)
	}
}
