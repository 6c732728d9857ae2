package boottest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	requireVM(t)
	qemu, _, img := buildQEMUImage(t, "-wan-vlan=7")
	l := vmLab(t, "vlan-wan")
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
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
