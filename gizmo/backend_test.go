package main

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web"
)

// ownerDaemon is a daemon with a legacy LAN, a delegation, a host that
// holds a lease, and the owner's settings.
func ownerDaemon(t *testing.T) *daemon {
	t.Helper()
	d := testDaemon(t)
	now := time.Now()
	d.st.LAN.Legacy4 = netip.MustParsePrefix("203.0.113.129/25")
	d.st.Delegated = &state.DelegatedPrefix{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)}
	nas, _ := net.ParseMAC("02:00:00:00:00:10")
	printer, _ := net.ParseMAC("02:00:00:00:00:20")
	d.sawFrame(nas, netip.MustParseAddr("2001:db8:1000:100::80"), now)
	d.sawFrame(printer, netip.MustParseAddr("203.0.113.150"), now)
	d.st.Hosts[printer.String()].IPv4Lease = netip.MustParseAddr("203.0.113.150")
	d.st.Remembered["02:00:00:00:00:30"] = state.HostRecord{Hostname: "tv", Policy: state.HostPolicy{DNS64: true}}
	if err := d.SetPolicy(nas.String(), state.HostPolicy{Hostname: "nas", IPv4: netip.MustParseAddr("203.0.113.140"), ExposedPorts: []string{"tcp/443"}, AppPinholes: true}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetInboundRules([]state.InboundRule{{Name: "web", Token: netip.MustParseAddr("::80"), Ports: []string{"tcp/443"}}}); err != nil {
		t.Fatal(err)
	}
	return d
}

// A backup restored on a fresh gizmo gives it the same settings, persisted
// before the restore returns.
func TestSettingsBackupAndRestore(t *testing.T) {
	d := ownerDaemon(t)
	backup := d.Settings()
	if len(backup.Hosts) != 3 || len(backup.InboundRules) != 1 || !backup.Hosts["02:00:00:00:00:10"].AppPinholes {
		t.Fatalf("backup %+v", backup)
	}

	fresh := testDaemon(t)
	fresh.st.LAN.Legacy4 = d.st.LAN.Legacy4
	seen, _ := net.ParseMAC("02:00:00:00:00:20")
	fresh.sawFrame(seen, netip.MustParseAddr("2001:db8:1000:100::20"), time.Now())
	fresh.SetPolicy(seen.String(), state.HostPolicy{Hostname: "old-name"})
	other, _ := net.ParseMAC("02:00:00:00:00:40")
	fresh.sawFrame(other, netip.MustParseAddr("2001:db8:1000:100::40"), time.Now())
	fresh.SetPolicy(other.String(), state.HostPolicy{Hostname: "not-in-the-file"})
	if err := fresh.RestoreSettings(backup); err != nil {
		t.Fatal(err)
	}
	got := fresh.Settings()
	for mac, p := range backup.Hosts {
		if !reflect.DeepEqual(got.Hosts[mac], p) {
			t.Errorf("host %s after restore: %+v, want %+v", mac, got.Hosts[mac], p)
		}
	}
	if p := got.Hosts[other.String()]; !reflect.DeepEqual(p, state.DefaultHostPolicy()) {
		t.Errorf("a host the file does not name keeps %+v, want the default policy", p)
	}
	if !reflect.DeepEqual(got.InboundRules, backup.InboundRules) {
		t.Errorf("rules after restore: %+v", got.InboundRules)
	}
	saved, warnings := loadDurable(fresh.cfg.StateDir)
	if len(warnings) != 0 || saved.Hosts["02:00:00:00:00:10"].Policy.Hostname != "nas" || len(saved.InboundRules) != 1 {
		t.Errorf("not persisted: %+v %v", saved, warnings)
	}
}

// A file with one bad entry changes nothing, and the error names each bad
// entry.
func TestRestoreIsAllOrNothing(t *testing.T) {
	d := ownerDaemon(t)
	before := d.Settings()
	bad := d.Settings()
	bad.Hosts["02:00:00:00:00:50"] = state.HostPolicy{IPv4: netip.MustParseAddr("203.0.113.150")} // the printer's lease
	bad.Hosts["02:00:00:00:00:60"] = state.HostPolicy{ExposedPorts: []string{"tcp/70000"}}
	bad.InboundRules = append(bad.InboundRules, state.InboundRule{Name: "broken"})
	d.st.LAN.OwnMACs = []string{"02:00:00:00:01:01"}
	bad.Hosts["02:00:00:00:01:01"] = state.DefaultHostPolicy()
	err := d.RestoreSettings(bad)
	if !errors.Is(err, web.ErrInvalid) {
		t.Fatalf("RestoreSettings = %v, want ErrInvalid", err)
	}
	for _, want := range []string{
		"host 02:00:00:00:01:01: one of the gizmo's own ports",
		"host 02:00:00:00:00:50: reservation 203.0.113.150 is leased to 02:00:00:00:00:20 now",
		"host 02:00:00:00:00:60: exposed ports",
		`inbound rule 2 ("broken"): a rule needs a token or a subnet`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := d.Settings(); !reflect.DeepEqual(got, before) {
		t.Errorf("a refused restore changed the settings:\n%+v\nwant\n%+v", got, before)
	}
}

func TestFindings(t *testing.T) {
	d := ownerDaemon(t)
	f := d.Findings()
	if f.PoolStart != netip.MustParseAddr("203.0.113.130") || f.PoolEnd != netip.MustParseAddr("203.0.113.254") {
		t.Errorf("pool %v–%v", f.PoolStart, f.PoolEnd)
	}
	if len(f.Rules) != 1 || len(f.Rules[0].Hosts) != 1 || f.Rules[0].Hosts[0].Name != "nas" {
		t.Errorf("rule findings %+v, want the token rule to match the nas", f.Rules)
	}
	if f.Internet.OK || f.Internet.Key != "no-wan" {
		t.Errorf("internet %+v, want no-wan (no port is the WAN)", f.Internet)
	}
}

// The dashboard's account of the fast path is the plan's decision.
func TestFindingsFastpath(t *testing.T) {
	d := ownerDaemon(t)
	if f := d.Findings().Fastpath; f == nil || !f.On {
		t.Errorf("kernel not observed: fast path %+v, want on", f)
	}
	d.observe(func(st *state.State) { st.Kernel = state.Kernel{Observed: true} })
	if f := d.Findings().Fastpath; f == nil || f.On || f.Off != plan.FastpathOffNoJIT {
		t.Errorf("no BPF JIT: fast path %+v, want off for %q", f, plan.FastpathOffNoJIT)
	}
	d.options.ExistingNetwork = true
	if f := d.Findings().Fastpath; f != nil {
		t.Errorf("existing network: fast path %+v, want none", f)
	}
}

func TestFirmwareOf(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "codeberg.org/monostack/gizmo", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0335e41abc"}, {Key: "vcs.time", Value: "2026-11-26T07:48:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	f := firmwareOf(bi, "rpi4\n", "", "ab12")
	if f.Version != "(devel)" || f.Revision != "0335e41abc" || !f.Modified || f.RevisionTime.IsZero() || f.Go != "go1.26.8" || f.Board != "rpi4" || f.BinarySHA256 != "ab12" {
		t.Errorf("firmwareOf = %+v", f)
	}
	// An image is built without VCS stamps: its build time and the hash
	// name it.
	if f := firmwareOf(nil, "rpi3\n", "2026-01-01T00:00:00Z\n", "ab12"); f.Revision != "" || f.BinarySHA256 != "ab12" || f.Go == "" ||
		!f.Built.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("an image's build: %+v", f)
	}
}
