package dhcp4

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// labService is a server with the lab's plan, its state in dir and its
// clock stopped at t0.
func labService(t *testing.T, dir string) *Service {
	t.Helper()
	s, err := New(Config{Interface: "lan0", StateDir: dir, Logger: quietLog(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	s.Update(labPlan())
	return s
}

func TestLeasesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s1 := labService(t, dir)
	for i := range 20 {
		lease(t, s1.e, net.HardwareAddr{2, 0, 0, 0, 3, byte(i)}.String(), t0)
	}
	// What the group committer does before it sends the ACKs.
	if !s1.flush(nil, false) {
		t.Fatal("flush failed")
	}
	want := s1.Leases()

	s2 := labService(t, dir)
	if diff := cmp.Diff(want, s2.Leases(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("leases after restart (-before +after):\n%s", diff)
	}
	// And each client gets its address back.
	for _, l := range want {
		if got := lease(t, s2.e, l.MAC, t0); got != l.IP {
			t.Errorf("%s: got %s after restart, want %s", l.MAC, got, l.IP)
		}
	}
}

func TestCorruptLeaseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LeaseFile)
	if err := os.WriteFile(path, []byte(`{"version":1,"leases":[{"mac":`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := New(Config{Interface: "lan0", StateDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("New with a corrupt lease file: %v", err)
	}
	if n := len(s.Leases()); n != 0 {
		t.Errorf("%d leases from a corrupt file", n)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "corrupt") {
		t.Errorf("want one clear error line, got:\n%s", logs.String())
	}
	backups, _ := filepath.Glob(path + ".corrupt-*")
	if len(backups) != 1 {
		t.Errorf("backups: %v, want one", backups)
	}
	// In its place: a fresh, valid, empty lease file.
	if _, recs := openStore(dir, quietLog()); len(recs) != 0 {
		t.Errorf("fresh lease file holds %d leases", len(recs))
	}
	// A fresh start: it serves and writes a good file.
	s.Update(labPlan())
	lease(t, s.e, macA, t0)
	if !s.flush(nil, false) {
		t.Fatal("flush failed")
	}
	if _, recs := openStore(dir, quietLog()); len(recs) != 1 {
		t.Errorf("new lease file holds %d leases, want 1", len(recs))
	}
}

func TestJournalReplayAndTornTail(t *testing.T) {
	dir := t.TempDir()
	s := labService(t, dir)
	ipA := lease(t, s.e, macA, t0)
	ipB := lease(t, s.e, macB, t0)
	s.flush(nil, false)
	// macA releases, macB is told to go IPv6-only: both changes are only in
	// the journal, not in the snapshot.
	handleNow(s.e, msg(t, dhcpv4.MessageTypeRelease, macA, withServerID(serverA.String()), withCiaddr(ipA.String())), t0)
	handleNow(s.e, msg(t, dhcpv4.MessageTypeDiscover, macB, withPRL(108)), t0)
	s.flush(nil, false)
	// A crash in the middle of a later append leaves a torn line.
	j, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	j.WriteString(`{"seq":99,"mac":"02:00`)
	j.Close()

	_, recs := openStore(dir, quietLog())
	got := map[string]leaseRecord{}
	for _, r := range recs {
		got[r.MAC] = r
	}
	if r, ok := got[macA]; !ok || r.IP != ipA || !r.Expires.Equal(t0) {
		t.Errorf("released lease: %+v, want %s kept with its lease ended at %v", r, ipA, t0)
	}
	if r, ok := got[macB]; ok {
		t.Errorf("v6-only host still has %+v (was %s)", r, ipB)
	}
	if len(got) != 1 {
		t.Errorf("records %v", got)
	}
}

// TestPersistFailureIsCountedNotFatal: when the lease journal cannot be
// written, the server counts and logs it, keeps the leases in memory and
// writes them once the disk works again.
func TestPersistFailureIsCountedNotFatal(t *testing.T) {
	dir := t.TempDir()
	journal := filepath.Join(dir, JournalFile)
	// A directory where the journal should be: every append fails.
	if err := os.Mkdir(journal, 0o755); err != nil {
		t.Fatal(err)
	}
	s := labService(t, dir)
	ip := lease(t, s.e, macA, t0)
	if s.flush(nil, false) {
		t.Fatal("flush reported success writing into a directory")
	}
	if st := s.Stats(); st.PersistErrors != 1 || st.Leases != 1 {
		t.Errorf("stats %+v: want one persist error and the lease kept", st)
	}
	// The disk recovers: the retried change lands.
	if err := os.Remove(journal); err != nil {
		t.Fatal(err)
	}
	if !s.flush(nil, false) {
		t.Fatal("flush failed after the journal became writable")
	}
	_, recs := openStore(dir, quietLog())
	if len(recs) != 1 || recs[0].IP != ip {
		t.Errorf("stored %+v, want the lease on %s", recs, ip)
	}
}

func TestInvalidPlanKeepsTheLastGoodOne(t *testing.T) {
	s := labService(t, t.TempDir())
	bad := labPlan()
	bad.PoolEnd = netip.MustParseAddr("192.0.2.1")
	s.Update(bad)
	if got := lease(t, s.e, macA, t0); !labPlan().Subnet().Contains(got) {
		t.Errorf("leased %s", got)
	}
}

func TestPlanChangeReportsEndedLeases(t *testing.T) {
	var ended []Lease
	s, err := New(Config{Interface: "lan0", StateDir: t.TempDir(), Logger: quietLog(), Now: func() time.Time { return t0 },
		OnRelease: func(l Lease) { ended = append(ended, l) }})
	if err != nil {
		t.Fatal(err)
	}
	s.Update(labPlan())
	ip := lease(t, s.e, macA, t0)
	p := labPlan()
	p.Server = netip.MustParsePrefix("198.51.100.1/24")
	p.PoolStart, p.PoolEnd = netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.254")
	p.Router, p.DNS = p.Server.Addr(), nil
	s.Update(p)
	s.flush(nil, false) // the committer reports them after writing
	if len(ended) != 1 || ended[0].IP != ip {
		t.Errorf("OnRelease got %+v, want the lease on %s", ended, ip)
	}
	if _, recs := openStore(s.cfg.StateDir, quietLog()); len(recs) != 0 {
		t.Errorf("the ended lease is still stored: %+v", recs)
	}
}
