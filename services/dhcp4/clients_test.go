package dhcp4_test

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/internal/testrun"
	"codeberg.org/monostack/gizmo/services/dhcp4"
)

// link is a server namespace and a client namespace joined by a veth pair,
// with the gizmo's DHCPv4 server on the server end. The addresses are the
// lab's legacy network: the gizmo at 203.0.113.129/25.
type link struct {
	serverNS, clientNS string
	clientIf           string
	svc                *dhcp4.Service
	stateDir           string
	events             chan dhcp4.Lease
	stop               func()
}

const serverIf = "d4s0"

func linkPlan() dhcp4.Plan {
	return dhcp4.Plan{
		Server:                 netip.MustParsePrefix("203.0.113.129/25"),
		PoolStart:              netip.MustParseAddr("203.0.113.130"),
		PoolEnd:                netip.MustParseAddr("203.0.113.254"),
		Router:                 netip.MustParseAddr("203.0.113.129"),
		DNS:                    []netip.Addr{netip.MustParseAddr("203.0.113.129")},
		NTP:                    []netip.Addr{netip.MustParseAddr("203.0.113.129")},
		Domain:                 "home.arpa",
		DefaultV6OnlyPreferred: true,
	}
}

func newLink(t *testing.T, p dhcp4.Plan) *link {
	t.Helper()
	l := &link{clientIf: "d4c0", stateDir: t.TempDir(), events: make(chan dhcp4.Lease, 64)}
	l.serverNS, l.clientNS = testns.New(t, "d4-srv"), testns.New(t, "d4-cli")
	testns.Veth(t, l.serverNS, serverIf, l.clientNS, l.clientIf)
	testns.IP(t, "-n", l.serverNS, "addr", "add", p.Server.String(), "dev", serverIf)
	testns.IP(t, "-n", l.serverNS, "link", "set", serverIf, "up")
	testns.IP(t, "-n", l.clientNS, "link", "set", l.clientIf, "up")
	l.start(t, p)
	return l
}

// start runs the server (again) on the link.
func (l *link) start(t *testing.T, p dhcp4.Plan) {
	t.Helper()
	var lan *dhcp4.LAN
	if err := testns.Do(l.serverNS, func() (err error) {
		lan, err = dhcp4.ListenLAN(serverIf)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	svc, err := dhcp4.New(dhcp4.Config{
		LAN: lan, StateDir: l.stateDir, Logger: testLogger(t),
		OnLease: func(le dhcp4.Lease) {
			select {
			case l.events <- le:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	svc.Update(p)
	stop := testrun.Start(t, "Run", svc.Run)
	l.svc = svc
	l.stop = func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// proc is a client program running in the client namespace.
type proc struct {
	cmd   *exec.Cmd
	lines <-chan string // its output, line by line
	done  chan struct{} // closed when it has exited
}

// dhcpcd runs dhcpcd 9 in the client namespace with private run and
// database directories (a mount namespace with tmpfs over them), the given
// configuration, and a hook script that records what it was told in dir.
func (l *link) dhcpcd(t *testing.T, conf string, args ...string) (p *proc, dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dhcpcd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	hook := "#!/bin/sh\nenv > " + dir + "/env.$reason\n"
	if err := os.WriteFile(filepath.Join(dir, "hook"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("mkdir -p /run/dhcpcd && mount -t tmpfs tmpfs /run/dhcpcd && mount -t tmpfs tmpfs /var/lib/dhcpcd && exec dhcpcd -4 -B -d -f %s -c %s %s %s",
		filepath.Join(dir, "dhcpcd.conf"), filepath.Join(dir, "hook"), strings.Join(args, " "), l.clientIf)
	return start(t, testns.Command(l.clientNS, "unshare", "-m", "--propagation", "private", "sh", "-c", script)), dir
}

// start runs cmd in a process group of its own, streams its output into
// the test log and the returned proc, and makes sure the whole group is
// gone when the test ends: dhcpcd forks privilege-separated helpers.
func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 256)
	p.lines = lines
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	go func() {
		defer close(lines)
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *proc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// waitFor reads lines until one contains want. The deadline only stops a
// hung client from hanging the test; it measures nothing.
func waitFor(t *testing.T, p *proc, want string) bool {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return false
			}
			t.Log(l)
			if strings.Contains(l, want) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func hookEnv(t *testing.T, dir, reason string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "env."+reason))
	if err != nil {
		t.Fatalf("dhcpcd hook %s: %v", reason, err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env
}

const legacyConf = `noipv4ll
noarp
hostname legacybox
option domain_name_servers, domain_name, routers, subnet_mask, broadcast_address, ntp_servers
`

// TestDhcpcdLegacyHost: a host that does not ask for option 108 gets a
// lease, a default route and DNS, and the daemon hears of it.
func TestDhcpcdLegacyHost(t *testing.T) {
	l := newLink(t, linkPlan())
	p, dir := l.dhcpcd(t, legacyConf, "-1", "-t", "20")
	if !waitFor(t, p, "leased 203.0.113.") {
		t.Fatal("dhcpcd got no lease")
	}
	<-p.done // the hook has run
	env := hookEnv(t, dir, "BOUND")
	for k, want := range map[string]string{
		"new_routers":             "203.0.113.129",
		"new_domain_name_servers": "203.0.113.129",
		"new_domain_name":         "home.arpa",
		"new_subnet_mask":         "255.255.255.128",
		// RFC 2132 §8.3: a legacy IoT device learns where to get the time.
		"new_ntp_servers": "203.0.113.129",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	ip := env["new_ip_address"]
	if r := testns.Exec(t, l.clientNS, "ip", "-4", "route", "show", "default"); !strings.Contains(r, "via 203.0.113.129") {
		t.Errorf("default route: %q", r)
	}
	if a := testns.Exec(t, l.clientNS, "ip", "-4", "addr", "show", "dev", l.clientIf); !strings.Contains(a, ip+"/25") {
		t.Errorf("address %s/25 not configured: %s", ip, a)
	}
	select {
	case le := <-l.events:
		if le.IP.String() != ip || le.Hostname != "legacybox" || le.V6OnlyPreferred {
			t.Errorf("OnLease %+v, want %s for legacybox", le, ip)
		}
	default:
		t.Error("no OnLease event")
	}
	if got := l.svc.Leases(); len(got) != 1 || got[0].IP.String() != ip {
		t.Errorf("Leases() = %+v", got)
	}
}

// TestDhcpcdV6OnlyHost: RFC 8925 end to end. dhcpcd with
// ipv6_only_preferred gets option 108, says so, and configures no IPv4
// address; the server allocated nothing. Then the owner turns the policy
// off for this host and its next attempt gets a lease.
func TestDhcpcdV6OnlyHost(t *testing.T) {
	l := newLink(t, linkPlan())
	d, _ := l.dhcpcd(t, legacyConf+"option ipv6_only_preferred\n")
	if !waitFor(t, d, "IPv6-Only Preferred received (1800 seconds)") {
		t.Fatal("dhcpcd did not report option 108")
	}
	le := <-l.events
	if !le.V6OnlyPreferred || le.IP.IsValid() {
		t.Errorf("OnLease %+v, want a v6-only report", le)
	}
	if a := testns.Exec(t, l.clientNS, "ip", "-4", "addr", "show", "dev", l.clientIf); strings.Contains(a, "inet ") {
		t.Errorf("IPv4 configured despite option 108: %s", a)
	}
	if n := len(l.svc.Leases()); n != 0 {
		t.Errorf("%d leases allocated for a v6-only host", n)
	}
	if st := l.svc.Stats(); st.V6OnlySent == 0 {
		t.Errorf("stats %+v", st)
	}
	d.kill()

	// The policy goes off. dhcpcd waits MIN_V6ONLY_WAIT (300 s) at least
	// whatever the server says (RFC 8925 §3.2), so the "next attempt" is a
	// new dhcpcd run, as after a reboot or a link flap.
	hw := testns.Exec(t, l.clientNS, "cat", "/sys/class/net/"+l.clientIf+"/address")
	p := linkPlan()
	p.Hosts = map[string]dhcp4.HostPolicy{strings.TrimSpace(hw): {V6OnlyPreferred: false}}
	l.svc.Update(p)
	d, _ = l.dhcpcd(t, legacyConf+"option ipv6_only_preferred\n", "-1", "-t", "20")
	if !waitFor(t, d, "leased 203.0.113.") {
		t.Fatal("no lease after the policy was turned off")
	}
}

// TestDhclientInterop: ISC dhclient, a second client implementation, gets a
// plain lease with router and DNS.
func TestDhclientInterop(t *testing.T) {
	l := newLink(t, linkPlan())
	dir := t.TempDir()
	leases := filepath.Join(dir, "dhclient.leases")
	cmd := testns.Command(l.clientNS, "dhclient", "-4", "-d", "-v", "-1",
		"-sf", "/bin/true", "-lf", leases, "-pf", filepath.Join(dir, "dhclient.pid"), l.clientIf)
	if !waitFor(t, start(t, cmd), "bound to 203.0.113.") {
		t.Fatal("dhclient got no lease")
	}
	b, err := os.ReadFile(leases)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fixed-address 203.0.113.", "option routers 203.0.113.129;", "option domain-name-servers 203.0.113.129;", `option domain-name "home.arpa";`, "option dhcp-lease-time 3600;"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("lease file lacks %q:\n%s", want, b)
		}
	}
}

// TestRestartKeepsLeaseForRealClient: a lease granted to dhcpcd is still
// there after the server restarts, and the client gets the same address
// when it asks again.
func TestRestartKeepsLeaseForRealClient(t *testing.T) {
	l := newLink(t, linkPlan())
	d, dir := l.dhcpcd(t, legacyConf, "-1", "-t", "20")
	if !waitFor(t, d, "leased 203.0.113.") {
		t.Fatal("no lease")
	}
	<-d.done
	ip := hookEnv(t, dir, "BOUND")["new_ip_address"]
	before := l.svc.Leases()
	l.stop()
	for len(l.events) > 0 {
		<-l.events // what the first server reported
	}
	l.start(t, linkPlan())
	after := l.svc.Leases()
	if len(before) != 1 || len(after) != 1 || before[0] != after[0] {
		t.Fatalf("leases before %+v, after restart %+v", before, after)
	}
	// The restarted server tells the daemon about the lease it restored.
	select {
	case le := <-l.events:
		if le != after[0] {
			t.Errorf("restarted server reported %+v, want %+v", le, after[0])
		}
	case <-time.After(10 * time.Second): // a hang guard, not a measurement
		t.Error("the restarted server did not report its restored lease")
	}
	testns.Exec(t, l.clientNS, "ip", "addr", "flush", "dev", l.clientIf)
	d, _ = l.dhcpcd(t, legacyConf, "-1", "-t", "20")
	if !waitFor(t, d, "leased "+ip) {
		t.Fatalf("after the restart the client did not get %s back", ip)
	}
}
