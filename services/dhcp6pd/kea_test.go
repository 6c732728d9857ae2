package dhcp6pd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/persist"
	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
)

// The real-peer test: Kea's DHCPv6 server delegating /56s over a veth pair
// between two namespaces, gzt-pdc-* (the gizmo) and gzt-pds-* (the ISP).
// The client runs in a child process started with `ip netns exec`, so that
// every socket it opens lives in the test namespace; the parent drives Kea
// and reads the child's leases.

const (
	childEnvIface = "GZT_PD_IFACE"
	childEnvState = "GZT_PD_STATE"
	childEnvWant  = "GZT_PD_WANT"
	// childEnvRefuse names an InvalidLeases reason: the child stops once
	// it has refused a lease for it (GZT_PD_WANT is then 0).
	childEnvRefuse = "GZT_PD_REFUSE"
	// childEnvUntrusted runs the child with a clock that is never trusted.
	childEnvUntrusted = "GZT_PD_UNTRUSTED"
	keaPool           = "2001:db8:1000::/40"
	keaPool2          = "2001:db8:2000::/40"
)

// keaLab is the two namespaces and the Kea server.
type keaLab struct {
	client, server string
	dir            string
	kea            *exec.Cmd
}

func newKeaLab(t *testing.T) *keaLab {
	testns.NeedRoot(t)
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	l := &keaLab{client: testns.New(t, "pdc"), server: testns.New(t, "pds"), dir: t.TempDir()}
	for _, ns := range []string{l.client, l.server} {
		// No DAD: link-local addresses are usable at once.
		testns.Sysctl(t, ns, "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
	}
	testns.Veth(t, l.client, "uplink0", l.server, "isp0")
	testns.IP(t, "-n", l.client, "link", "set", "uplink0", "up")
	testns.IP(t, "-n", l.server, "link", "set", "isp0", "up")
	testns.IP(t, "-n", l.server, "addr", "add", "2001:db8:0:1::1/64", "dev", "isp0", "nodad")
	return l
}

func (l *keaLab) startKea(t *testing.T, pool netip.Prefix) {
	t.Helper()
	l.startKeaDelegating(t, pool, 56)
}

// startKeaDelegating runs Kea delegating prefixes of length delegated
// from pool.
func (l *keaLab) startKeaDelegating(t *testing.T, pool netip.Prefix, delegated int) {
	t.Helper()
	conf := map[string]any{"Dhcp6": map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{"isp0"}},
		"data-directory":    l.dir,
		"lease-database": map[string]any{
			"type": "memfile", "name": filepath.Join(l.dir, "kea6.leases"), "persist": true, "lfc-interval": 0,
		},
		// Short timers so that a Renew happens within the test.
		"renew-timer": 2, "rebind-timer": 4, "preferred-lifetime": 30, "valid-lifetime": 40,
		// Kea 2.2 does not define OPTION_NTP_SERVER (RFC 5908): an empty
		// container for the address and FQDN suboptions.
		"option-def": []map[string]any{
			{"name": "ntp-server", "code": 56, "space": "dhcp6", "type": "empty", "encapsulate": "ntp-sub"},
			{"name": "ntp-server-address", "code": 1, "space": "ntp-sub", "type": "ipv6-address"},
			{"name": "ntp-server-fqdn", "code": 3, "space": "ntp-sub", "type": "fqdn"},
		},
		"option-data": []map[string]any{
			{"name": "dns-servers", "data": "2001:db8:0:1::53"},
			{"name": "ntp-server"},
			{"space": "ntp-sub", "name": "ntp-server-address", "data": "2001:db8:0:1::1"},
			{"space": "ntp-sub", "name": "ntp-server-fqdn", "data": "ntp.example.test."},
			{"name": "sntp-servers", "data": "2001:db8:0:1::123"},
			{"name": "aftr-name", "data": "aftr.example.test."},
		},
		"subnet6": []map[string]any{{
			"id": 1, "subnet": "2001:db8:0:1::/64", "interface": "isp0",
			"pd-pools": []map[string]any{{"prefix": pool.Addr().String(), "prefix-len": pool.Bits(), "delegated-len": delegated}},
		}},
		"loggers": []map[string]any{{
			"name": "kea-dhcp6", "severity": "INFO",
			"output_options": []map[string]any{{"output": filepath.Join(l.dir, "kea.log")}},
		}},
	}}
	b, _ := json.Marshal(conf)
	cfg := filepath.Join(l.dir, "kea-dhcp6.conf")
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := testns.Command(l.server, "kea-dhcp6", "-c", cfg)
	cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+l.dir, "KEA_LOCKFILE_DIR="+l.dir)
	out, _ := os.Create(filepath.Join(l.dir, "kea.stdout"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.kea = cmd
	t.Cleanup(func() { l.stopKea() })
}

func (l *keaLab) stopKea() {
	if l.kea != nil {
		l.kea.Process.Kill()
		l.kea.Wait()
		l.kea = nil
	}
}

func (l *keaLab) keaLog() string {
	b, _ := os.ReadFile(filepath.Join(l.dir, "kea.log"))
	s, _ := os.ReadFile(filepath.Join(l.dir, "kea.stdout"))
	return string(b) + string(s)
}

// childResult is what one run of the client reported.
type childResult struct {
	Leases []Lease
	Lost   []netip.Prefix
	Stats  Stats
	// Rebinds and Replies had been counted when the first lease was
	// reported.
	RebindsAtFirst, RepliesAtFirst uint64
}

// runClient runs the client in the client namespace until it has accepted
// want Replies, and returns what it reported.
func (l *keaLab) runClient(t *testing.T, stateDir string, want int, env ...string) childResult {
	t.Helper()
	return l.runChild(t, stateDir, want, "", env...)
}

// runChild runs the client until it has accepted want Replies or, with a
// refuse reason, refused a lease for that reason.
func (l *keaLab) runChild(t *testing.T, stateDir string, want int, refuse string, env ...string) childResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := testns.CommandContext(ctx, l.client, os.Args[0], "-test.run=^TestKeaChild$", "-test.v")
	cmd.Env = append(append(os.Environ(), childEnvIface+"=uplink0", childEnvState+"="+stateDir, childEnvWant+"="+strconv.Itoa(want),
		childEnvRefuse+"="+refuse), env...)
	out, err := cmd.CombinedOutput()
	var res childResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	found := false
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatalf("child result: %v", err)
			}
			found = true
		}
	}
	if err != nil || !found {
		t.Fatalf("client run failed: %v\n%s\nKea:\n%s", err, out, l.keaLog())
	}
	for _, le := range res.Leases {
		t.Logf("lease %v valid until %v", le.Prefix, le.ValidUntil.Format(time.TimeOnly))
	}
	t.Logf("stats: solicits %d requests %d renews %d rebinds %d replies %d",
		res.Stats.Solicits, res.Stats.Requests, res.Stats.Renews, res.Stats.Rebinds, res.Stats.Replies)
	return res
}

// TestKeaChild is the client side of TestKea; it runs only in the child.
func TestKeaChild(t *testing.T) {
	iface := os.Getenv(childEnvIface)
	if iface == "" {
		t.Skip("child process of TestKea")
	}
	want, _ := strconv.Atoi(os.Getenv(childEnvWant))
	var (
		mu  sync.Mutex
		res childResult
	)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var s *Service
	cfg := Config{
		Interface: iface, StateDir: os.Getenv(childEnvState), HintLength: 56,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnLease: func(l Lease) {
			st := s.Stats()
			mu.Lock()
			if len(res.Leases) == 0 {
				res.RebindsAtFirst, res.RepliesAtFirst = st.Rebinds, st.Replies
			}
			res.Leases = append(res.Leases, l)
			mu.Unlock()
			if s.Stats().Leases >= uint64(want) {
				cancel()
			}
		},
		OnLost: func(p netip.Prefix) {
			mu.Lock()
			res.Lost = append(res.Lost, p)
			mu.Unlock()
		},
	}
	if os.Getenv(childEnvUntrusted) != "" {
		cfg.ClockTrusted = func() bool { return false }
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	refuse := os.Getenv(childEnvRefuse)
	if refuse != "" {
		go func() {
			for ctx.Err() == nil && s.Stats().InvalidLeases[refuse] == 0 {
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
		}()
	}
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	res.Stats = s.Stats()
	b, _ := json.Marshal(res)
	mu.Unlock()
	fmt.Printf("RESULT %s\n", b)
	if res.Stats.Leases < uint64(want) {
		t.Fatalf("accepted %d leases, want %d", res.Stats.Leases, want)
	}
	if refuse != "" && res.Stats.InvalidLeases[refuse] == 0 {
		t.Fatalf("refused no lease as %s: %+v", refuse, res.Stats.InvalidLeases)
	}
}

func TestKea(t *testing.T) {
	l := newKeaLab(t)
	pool := netip.MustParsePrefix(keaPool)
	l.startKea(t, pool)
	state := t.TempDir()

	// Solicit → Advertise → Request → Reply, then a Renew at T1.
	first := l.runClient(t, state, 2)
	if len(first.Leases) < 2 {
		t.Fatalf("leases %+v", first.Leases)
	}
	p := first.Leases[0].Prefix
	if p.Bits() != 56 || !pool.Contains(p.Addr()) {
		t.Fatalf("delegated %v, want a /56 from %v", p, pool)
	}
	if got := first.Leases[0].DNS; len(got) != 1 || got[0] != netip.MustParseAddr("2001:db8:0:1::53") {
		t.Errorf("DNS %v, want [2001:db8:0:1::53]", got)
	}
	// RFC 5908 and RFC 4075, as Kea encodes them.
	if got, want := first.Leases[0].NTP, []netip.Addr{netip.MustParseAddr("2001:db8:0:1::1"), netip.MustParseAddr("2001:db8:0:1::123")}; !slices.Equal(got, want) {
		t.Errorf("NTP %v, want %v", got, want)
	}
	if got := first.Leases[0].AFTRName; got != "aftr.example.test" {
		t.Errorf("AFTR name %q from Kea's option 64, want aftr.example.test (RFC 6334)", got)
	}
	if got := first.Leases[0].NTPNames; !slices.Equal(got, []string{"ntp.example.test"}) {
		t.Errorf("NTP names %v, want [ntp.example.test]", got)
	}
	if first.Stats.Solicits < 1 || first.Stats.Requests < 1 || first.Stats.Renews < 1 {
		t.Errorf("stats %+v, want a Solicit, a Request and a Renew", first.Stats)
	}
	if last := first.Leases[len(first.Leases)-1]; last.Prefix != p || !last.ValidUntil.After(first.Leases[0].ValidUntil) {
		t.Errorf("Renew gave %v valid until %v, want %v extended", last.Prefix, last.ValidUntil, p)
	}
	var id1 identity
	if _, err := persist.ReadJSON(filepath.Join(state, identityFile), &id1); err != nil || id1.DUID == "" {
		t.Fatalf("DUID not persisted: %v", err)
	}

	// Restart: the persisted DUID and lease bring back the same prefix,
	// through a Rebind (RFC 8415 §18.2.12), not a new Solicit.
	second := l.runClient(t, state, 1)
	if len(second.Leases) < 2 {
		t.Fatalf("leases after restart %+v, want the stored one and the Rebind's", second.Leases)
	}
	for _, got := range second.Leases {
		if got.Prefix != p {
			t.Errorf("after restart: %v, want %v", got.Prefix, p)
		}
	}
	if second.Stats.Rebinds < 1 || second.Stats.Solicits != 0 {
		t.Errorf("restart stats %+v, want a Rebind and no Solicit", second.Stats)
	}
	var id2 identity
	persist.ReadJSON(filepath.Join(state, identityFile), &id2)
	if id2 != id1 {
		t.Errorf("DUID changed across restart: %v → %v", id1, id2)
	}

	// The hint: a client whose lease has expired asks for its old prefix in
	// the Solicit, and Kea, which has it free, delegates it again.
	hinted := t.TempDir()
	want := netip.MustParsePrefix("2001:db8:1000:2300::/56")
	if err := persist.WriteJSON(filepath.Join(hinted, identityFile), identity{DUID: "00030001020000aa0001", IAID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := persist.WriteJSON(filepath.Join(hinted, leaseFile), Lease{Prefix: want, ValidUntil: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	third := l.runClient(t, hinted, 1)
	if len(third.Leases) != 1 || third.Leases[0].Prefix != want {
		t.Errorf("hinted client got %+v, want %v", third.Leases, want)
	}

	// Renumbering: the ISP moves to another pool and keeps its lease
	// database. The client, still holding p, rebinds at restart; Kea answers
	// with p at lifetime 0 and a new prefix, and the client reports p lost.
	l.stopKea()
	pool2 := netip.MustParsePrefix(keaPool2)
	l.startKea(t, pool2)
	fourth := l.runClient(t, state, 1)
	last := fourth.Leases[len(fourth.Leases)-1]
	if !pool2.Contains(last.Prefix.Addr()) || last.Prefix.Bits() != 56 {
		t.Errorf("after renumbering: %v, want a /56 from %v", last.Prefix, pool2)
	}
	if len(fourth.Lost) != 1 || fourth.Lost[0] != p {
		t.Errorf("lost %v after renumbering, want [%v]", fourth.Lost, p)
	}
}

// TestKeaDelegationPolicy has Kea delegate prefixes that are no home's
// delegation: the client refuses each one, counts why, and never reports a
// lease (RFC 8415 §18.2.10.1 leaves the policy to the client; RFC 7084
// WPD-2/WPD-3, RFC 4193).
func TestKeaDelegationPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pool      string
		delegated int
		reason    string
	}{
		{"RFC 4193: a unique local prefix is refused", "fd00:1000::/40", 56, ReasonULA},
		{"RFC 6177: a prefix shorter than /32 is refused", "2001:d00::/24", 28, ReasonPrefixTooShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newKeaLab(t)
			l.startKeaDelegating(t, netip.MustParsePrefix(tc.pool), tc.delegated)
			res := l.runChild(t, t.TempDir(), 0, tc.reason)
			if len(res.Leases) != 0 || res.Stats.Leases != 0 {
				t.Errorf("accepted %+v (%d leases), want none", res.Leases, res.Stats.Leases)
			}
			if res.Stats.Advertises == 0 {
				t.Errorf("no Advertise from Kea: stats %+v\nKea:\n%s", res.Stats, l.keaLog())
			}
			if n := res.Stats.InvalidLeases[tc.reason]; n == 0 {
				t.Errorf("InvalidLeases %v, want %s counted", res.Stats.InvalidLeases, tc.reason)
			}
		})
	}
}

// The gizmo was off while the ISP renumbered (here: Kea moved to another
// pool), and it boots with a clock that cannot tell how long that was. The
// stored prefix must not be offered to the LAN: the client rebinds first,
// and only the Reply's prefix is reported.
func TestKeaUntrustedClock(t *testing.T) {
	l := newKeaLab(t)
	l.startKea(t, netip.MustParsePrefix(keaPool))
	state := t.TempDir()
	first := l.runClient(t, state, 1)
	p := first.Leases[0].Prefix

	l.stopKea()
	pool2 := netip.MustParsePrefix(keaPool2)
	l.startKea(t, pool2)
	res := l.runClient(t, state, 1, childEnvUntrusted+"=1")
	for _, got := range res.Leases {
		if got.Prefix == p {
			t.Errorf("the stored prefix %v was offered, which the ISP no longer delegates", p)
		}
		if !pool2.Contains(got.Prefix.Addr()) {
			t.Errorf("lease %v outside the new pool %v", got.Prefix, pool2)
		}
	}
	if len(res.Leases) == 0 {
		t.Fatal("no lease after the restart")
	}
	// RFC 8415 18.2.5: a Rebind went out, and a Reply came, before the
	// first lease was reported.
	if res.RebindsAtFirst < 1 || res.RepliesAtFirst < 1 {
		t.Errorf("first lease reported after %d Rebinds and %d Replies, want a Rebind answered first", res.RebindsAtFirst, res.RepliesAtFirst)
	}
	if len(res.Lost) != 0 {
		t.Errorf("lost %v: the stored prefix was never offered, nothing to phase out", res.Lost)
	}
	if res.Stats.UnconfirmedDropped != 1 {
		t.Errorf("unconfirmed dropped %d, want 1", res.Stats.UnconfirmedDropped)
	}
}
