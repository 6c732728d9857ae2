package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/web"
)

func TestWANVLANFlag(t *testing.T) {
	c, err := parseFlags([]string{"-wan-vlan", "7"}, io.Discard)
	if err != nil || c.WANVLAN != 7 {
		t.Fatalf("-wan-vlan 7: %d, %v", c.WANVLAN, err)
	}
	if c, _ := parseFlags(nil, io.Discard); c.WANVLAN != 0 {
		t.Errorf("no flag: WANVLAN %d, want 0 (the dashboard's, or detected)", c.WANVLAN)
	}
	for _, bad := range []string{"0", "4095", "seven", "-1", "7.0", "0x7"} {
		_, err := parseFlags([]string{"-wan-vlan", bad}, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), "-wan-vlan: ") || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "1 to 4094") {
			t.Errorf("-wan-vlan %s: %v; want one line naming the flag and the range (IEEE 802.1Q)", bad, err)
		}
	}
}

// The owner's WAN VLAN is durable state: written with gizmo.json, read
// back at start; one that is no VLAN ID is dropped with a warning.
func TestWANVLANIsDurable(t *testing.T) {
	d := testDaemon(t)
	if _, err := d.SetWANVLAN(832); err != nil {
		t.Fatal(err)
	}
	dur, warnings := loadDurable(d.cfg.StateDir)
	if len(warnings) != 0 || dur.WANVLAN != 832 {
		t.Fatalf("loaded %d (%v), want 832", dur.WANVLAN, warnings)
	}
	ula := dur.ULA
	fresh := testDaemon(t)
	restoreDurable(&fresh.st, dur)
	if fresh.st.WANVLAN != 832 || fresh.Settings().WANVLAN != 832 {
		t.Errorf("restored %d; settings %+v", fresh.st.WANVLAN, fresh.Settings())
	}

	path := filepath.Join(d.cfg.StateDir, durableFile)
	d.st.ULA, d.dirty = ula, true
	if err := d.flushDurable(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), `"wan_vlan": 832`, `"wan_vlan": 4095`, 1)), 0o644)
	dur, warnings = loadDurable(d.cfg.StateDir)
	if dur.WANVLAN != 0 || len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "untagged until it is set again") {
		t.Errorf("VLAN 4095 on disk: loaded %d, warnings %v", dur.WANVLAN, warnings)
	}
	if dur.ULA != ula {
		t.Errorf("a bad VLAN cost the rest of the state: ULA %v, want %v", dur.ULA, ula)
	}
}

// A new setting restarts the roles only when the VLAN the uplink must be
// on changes, after the caller's answer (commit); the -wan-vlan flag wins
// over it.
func TestSetWANVLANReappliesTheRoles(t *testing.T) {
	d := testDaemon(t)
	var reasons []string
	d.reapplyRoles = func(reason string) { reasons = append(reasons, reason) }

	if _, err := d.SetWANVLAN(4095); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("VLAN 4095: %v, want web.ErrInvalid", err)
	}
	commit, err := d.SetWANVLAN(7)
	if err != nil || commit == nil {
		t.Fatalf("VLAN 7 on an untagged run: commit %v, %v", commit != nil, err)
	}
	if len(reasons) != 0 {
		t.Fatal("the roles were applied again before the answer")
	}
	commit()
	if len(reasons) != 1 || reasons[0] != "the WAN VLAN setting changed to VLAN 7 (dashboard)" {
		t.Errorf("reasons %q", reasons)
	}
	if dur, _ := loadDurable(d.cfg.StateDir); dur.WANVLAN != 7 {
		t.Errorf("persisted %d before the answer, want 7", dur.WANVLAN)
	}

	// The next run is on VLAN 7: the same setting again changes nothing.
	d.wanVLAN = wanVLANChoiceOf(0, 7)
	if commit, err := d.SetWANVLAN(7); err != nil || commit != nil {
		t.Errorf("VLAN 7 again: commit %v, %v", commit != nil, err)
	}
	// None set: back to untagged or detected.
	if commit, _ := d.SetWANVLAN(0); commit == nil {
		t.Error("clearing the VLAN does not apply the roles again")
	}

	// With -wan-vlan the flag decides: saved, nothing restarts.
	flagged := testDaemon(t)
	flagged.cfg.WANVLAN = 10
	flagged.wanVLAN = wanVLANChoiceOf(10, 0)
	flagged.reapplyRoles = func(string) { t.Error("the flag's VLAN was overridden") }
	if commit, err := flagged.SetWANVLAN(7); err != nil || commit != nil || flagged.st.WANVLAN != 7 {
		t.Errorf("with -wan-vlan 10: commit %v, %v, setting %d", commit != nil, err, flagged.st.WANVLAN)
	}
	if id, from := plan.WANVLAN(flagged.cfg.WANVLAN, flagged.st.WANVLAN); id != 10 || from != plan.WANVLANFromFlag {
		t.Errorf("in force %d from %s", id, from)
	}
}

// A restored backup carries the WAN VLAN with it.
func TestRestoreSettingsSetsTheWANVLAN(t *testing.T) {
	d := ownerDaemon(t)
	d.SetWANVLAN(7)
	backup := d.Settings()
	fresh := testDaemon(t)
	fresh.st.LAN.Legacy4 = d.st.LAN.Legacy4
	if err := fresh.RestoreSettings(backup); err != nil {
		t.Fatal(err)
	}
	if fresh.Settings().WANVLAN != 7 {
		t.Errorf("restored WAN VLAN %d, want 7", fresh.Settings().WANVLAN)
	}
	bad := backup
	bad.WANVLAN = 4095
	if err := fresh.RestoreSettings(bad); !errors.Is(err, web.ErrInvalid) || fresh.Settings().WANVLAN != 7 {
		t.Errorf("restoring VLAN 4095: %v; setting %d", err, fresh.Settings().WANVLAN)
	}
}
