package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

// The gizmo's time on the LAN: it synchronises with the ISP's chrony,
// which Kea names in DHCPv6 option 56 and DHCPv4 option 42, and serves
// its clock to the LAN hosts on its ULA router address and its legacy IPv4
// address (RFC 5905). The legacy host's DHCPv4 lease names the gizmo as
// its NTP server (RFC 2132 §8.3).

// clockStatus is the part of /api/status about the clock and the ULA.
type clockStatus struct {
	ULA   netip.Prefix `json:"ula"`
	Clock struct {
		Synced   bool      `json:"synced"`
		Source   string    `json:"source"`
		LastSync time.Time `json:"last_sync"`
	} `json:"clock"`
}

// waitClockSynced waits until the dashboard says the gizmo's clock is
// synchronised.
func waitClockSynced(t *testing.T, ctx context.Context) clockStatus {
	t.Helper()
	var st clockStatus
	err := netlab.WaitFor(ctx, "the gizmo's clock to be synchronised", func(ctx context.Context) (bool, error) {
		body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/api/status")
		if err != nil {
			return false, nil
		}
		st = clockStatus{}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return false, fmt.Errorf("GET /api/status: %w: %s", err, body)
		}
		return st.Clock.Synced, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var inet6 = regexp.MustCompile(`inet6 ([0-9a-f:]+)/`)

var clockWrongBy = regexp.MustCompile(`System clock wrong by (-?[0-9.]+) seconds`)

// ntpSample is what one real NTP client measured from one server.
type ntpSample struct {
	offset  time.Duration
	stratum int
}

// chronyQuery asks server once with chronyd from ns: -Q measures and
// prints the offset without setting the clock, and -x keeps chronyd off
// the clock altogether (the namespaces share the host's). The stratum
// comes from chronyd's own measurements log.
func chronyQuery(t *testing.T, ctx context.Context, ns string, server netip.Addr) (ntpSample, string, error) {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "chronyd", "-Q", "-x", "-u", "root", "-t", "20",
		"server "+server.String()+" iburst maxsamples 1",
		"pidfile "+filepath.Join(dir, "chronyd.pid"), "cmdport 0", "bindcmdaddress /",
		"logdir "+dir, "log measurements").CombinedOutput()
	m := clockWrongBy.FindSubmatch(out)
	if m == nil {
		return ntpSample{}, string(out), fmt.Errorf("chronyd measured no offset (%v)", err)
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	s := ntpSample{offset: time.Duration(f * float64(time.Second)), stratum: -1}
	log, err := os.Open(filepath.Join(dir, "measurements.log"))
	if err != nil {
		return s, string(out), err
	}
	defer log.Close()
	// "Date Time IP-Address L St ...": the stratum of each sample.
	sc := bufio.NewScanner(log)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 4 && f[2] == server.String() {
			s.stratum, _ = strconv.Atoi(f[4])
		}
	}
	return s, string(out), nil
}

func TestLANHostsGetTimeFromTheGizmo(t *testing.T) {
	l := LabWithGizmo(t)
	if _, err := exec.LookPath("chronyd"); err != nil {
		t.Skip("chronyd not installed")
	}
	ctx := testContext(t, 3*time.Minute)
	st := waitClockSynced(t, ctx)
	if src := st.Clock.Source; src != netlab.ISPWAN6.String() && src != netlab.ISPWAN4.String() {
		t.Errorf("synchronised with %q, want the ISP's chrony (%s or %s, from DHCPv6 option 56 or DHCPv4 option 42)", src, netlab.ISPWAN6, netlab.ISPWAN4)
	}
	if !st.ULA.IsValid() {
		t.Fatalf("no ULA in /api/status")
	}
	ula := state.RouterULA(st.ULA)
	legacy := netlab.GizmoLANIPv4.Addr()
	// The hosts need their addresses on the gizmo's networks first.
	inULA := func(out string) bool {
		for _, m := range inet6.FindAllStringSubmatch(out, -1) {
			if a, err := netip.ParseAddr(m[1]); err == nil && st.ULA.Contains(a) {
				return true
			}
		}
		return false
	}
	if out, err := l.WaitExec(ctx, netlab.NSLanV6, inULA, "ip", "-6", "addr", "show", "dev", netlab.HostIf, "scope", "global"); err != nil {
		t.Fatalf("gz-lan-v6 has no address in the ULA: %v\n%s", err, out)
	}
	hostIPv4(t, ctx, l, netlab.NSLanLegacy)

	for _, q := range []struct {
		ns     string
		server netip.Addr
	}{{netlab.NSLanV6, ula}, {netlab.NSLanLegacy, legacy}} {
		// chrony (local stratum 8) → the gizmo → the LAN: stratum 9.
		s, out, err := chronyQuery(t, ctx, q.ns, q.server)
		switch {
		case err != nil:
			t.Errorf("chronyd -Q in %s to %s: %v\n%s", q.ns, q.server, err, out)
		case s.stratum < 1 || s.stratum > 9:
			t.Errorf("chronyd -Q in %s to %s: stratum %d, want 1..9\n%s", q.ns, q.server, s.stratum, out)
		case s.offset.Abs() > time.Second:
			// The gizmo serves its host's clock, which chronyd shares.
			t.Errorf("chronyd -Q in %s to %s: clock wrong by %v", q.ns, q.server, s.offset)
		default:
			t.Logf("%s → %s: stratum %d, offset %v", q.ns, q.server, s.stratum, s.offset)
		}
	}
}

// RFC 2132 §8.3: the legacy host's lease names the gizmo's legacy address
// as its NTP server, the address it can reach.
func TestDHCP4LeaseNamesTheGizmoAsNTPServer(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, time.Minute)
	hostIPv4(t, ctx, l, netlab.NSLanLegacy)
	ack := dhcpcdLease(t, l, "dhcpcd-lan-legacy")
	ntp := ack.NTPServers()
	if len(ntp) != 1 || ntp[0].String() != netlab.GizmoLANIPv4.Addr().String() {
		t.Errorf("NTP servers (option 42) = %v, want the gizmo's legacy address %s", ntp, netlab.GizmoLANIPv4.Addr())
	}
}
