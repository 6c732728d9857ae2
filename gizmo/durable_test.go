package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/derive"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp4"
)

func testDaemon(t *testing.T) *daemon {
	t.Helper()
	cfg := config{StateDir: t.TempDir()}
	return newDaemon(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// The state owns every persisted field: a host seen in this run and one
// remembered from an earlier run are both written, each once, and a
// remembered host takes its record back when it shows up.
func TestDurableStateHasOneOwner(t *testing.T) {
	d := testDaemon(t)
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	seen, _ := net.ParseMAC("02:00:00:00:00:10")
	remembered := "02:00:00:00:00:20"
	restoreDurable(&d.st, durable{
		ULA: netip.MustParsePrefix("fd12:3456:789a::/48"),
		Hosts: map[string]state.HostRecord{remembered: {
			Hostname: "printer", FirstSeen: t0, Policy: state.HostPolicy{DNS64: false, ExposedPorts: []string{"tcp/631"}},
		}},
		InboundRules: []state.InboundRule{{Name: "web", Token: netip.MustParseAddr("::80"), Ports: []string{"tcp/443"}}},
	})
	d.sawHost(derive.Sighting{MAC: seen.String(), Addr: netip.MustParseAddr("2001:db8::10"), At: t0.Add(time.Minute), FromFrame: true})
	d.mu.Lock()
	d.namedHostLocked(d.st.Hosts[seen.String()], "laptop", t0.Add(time.Minute))
	d.mu.Unlock()
	if !d.dirty {
		t.Errorf("a host's new name does not mark the state for saving")
	}
	if err := d.flushDurable(); err != nil {
		t.Fatal(err)
	}
	got, warnings := loadDurable(d.cfg.StateDir)
	if len(warnings) != 0 {
		t.Fatal(warnings)
	}
	if got.ULA != d.st.ULA || len(got.InboundRules) != 1 || len(got.Hosts) != 2 {
		t.Fatalf("saved %+v", got)
	}
	if r := got.Hosts[seen.String()]; !r.Policy.DNS64 || !r.FirstSeen.Equal(t0.Add(time.Minute)) || r.Hostname != "laptop" {
		t.Errorf("the new host's record %+v, want the default policy, its name and its first sighting", r)
	}
	if r := got.Hosts[remembered]; r.Hostname != "printer" || r.Policy.DNS64 {
		t.Errorf("the remembered host's record %+v was not kept", r)
	}

	// The remembered host shows up: its policy and name apply, and it is
	// held in one place only.
	rmac, _ := net.ParseMAC(remembered)
	d.sawHost(derive.Sighting{MAC: rmac.String(), Addr: netip.MustParseAddr("2001:db8::20"), At: t0.Add(time.Hour), FromFrame: true})
	h := d.st.Hosts[remembered]
	if h == nil || h.Hostname != "printer" || h.Policy.DNS64 || !h.FirstSeen.Equal(t0) {
		t.Fatalf("host after its return: %+v", h)
	}
	if _, ok := d.st.Remembered[remembered]; ok {
		t.Errorf("the host is in Hosts and still in Remembered")
	}
	// Its policy changes once, in the state, and reaches the file.
	p := h.Policy
	p.DNS64 = true
	if err := d.SetPolicy(remembered, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(d.cfg.StateDir, durableFile))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Hosts map[string]struct {
			Hostname string `json:"hostname"`
			Policy   struct {
				DNS64 bool `json:"dns64"`
			} `json:"policy"`
			FirstSeen time.Time `json:"first_seen"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if r := file.Hosts[remembered]; !r.Policy.DNS64 || r.Hostname != "printer" || !r.FirstSeen.Equal(t0) {
		t.Errorf("gizmo.json holds %+v for the edited host:\n%s", r, b)
	}
}

// Writing the file works on a copy: a later edit of the state does not
// reach a record already handed out.
func TestDurableOfSharesNothing(t *testing.T) {
	st := state.State{Hosts: map[string]*state.Host{"02:00:00:00:00:10": {Policy: state.HostPolicy{ExposedPorts: []string{"tcp/22"}}}}}
	d := durableOf(&st)
	st.Hosts["02:00:00:00:00:10"].Policy.ExposedPorts[0] = "tcp/23"
	if got := d.Hosts["02:00:00:00:00:10"].Policy.ExposedPorts[0]; got != "tcp/22" {
		t.Errorf("the saved view changed with the state: %s", got)
	}
	if !strings.Contains(mustJSON(t, d), `"first_seen"`) {
		t.Errorf("file form lost its field names")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The proven WAN survives a restart: a reboot must know which port carried
// the ISP's lease, by its hardware address.
func TestDurableKeepsTheProvenWAN(t *testing.T) {
	d := testDaemon(t)
	at := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	d.st.Roles.Proven = state.ProvenWAN{MAC: "02:00:00:00:01:02", At: at, By: state.ProvenByDelegation}
	d.dirty = true
	if err := d.flushDurable(); err != nil {
		t.Fatal(err)
	}
	got, warnings := loadDurable(d.cfg.StateDir)
	if len(warnings) != 0 || got.ProvenWAN == nil {
		t.Fatalf("saved %+v, %v", got, warnings)
	}
	var st state.State
	restoreDurable(&st, got)
	if p := st.Roles.Proven; p.MAC != "02:00:00:00:01:02" || p.By != state.ProvenByDelegation || !p.At.Equal(at) {
		t.Errorf("restored %+v", p)
	}
}

// The gizmo's own ports are never hosts: not when a frame from one of them
// is seen (a role probe heard on the bridge), not when it leases or
// names itself.
func TestOwnPortsAreNoHosts(t *testing.T) {
	d := testDaemon(t)
	port, _ := net.ParseMAC("02:00:00:00:01:02")
	d.st.LAN.OwnMACs = []string{port.String()}
	now := time.Now()
	d.sawFrame(port, netip.MustParseAddr("fe80::1"), now)
	d.leased(dhcp4.Lease{MAC: port.String(), IP: netip.MustParseAddr("203.0.113.140"), Hostname: "gizmo"}, true)
	if _, ok := d.st.Hosts[port.String()]; ok {
		t.Fatalf("the gizmo's own port %s became a host", port)
	}
	if err := d.SetPolicy(port.String(), state.DefaultHostPolicy()); err == nil {
		t.Errorf("a policy for the gizmo's own port was accepted")
	}
}
