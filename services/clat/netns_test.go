package clat

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
)

// The CLAT with the real kernel and a real NAT64: a legacy host, the gizmo
// with the service, and an ISP running tayga as its NAT64 in front of an
// IPv4 server. Only the CLAT is the gizmo here (no firewall, no other
// service).

var (
	legacyHost  = netip.MustParseAddr("192.168.64.2")
	gizmoLAN4   = netip.MustParseAddr("192.168.64.1")
	ispWAN6     = netip.MustParseAddr("2001:db8:0:1::1")
	gizmoWAN6   = netip.MustParseAddr("2001:db8:0:1::2")
	taygaPool   = netip.MustParsePrefix("192.0.2.240/28")
	taygaIPv4   = netip.MustParseAddr("192.0.2.241")
	clatPrefix  = netip.MustParsePrefix("2001:db8:1000:ff::/64")
	serverPort  = 8080
	netnsDeploy = 20 * time.Second
)

type clatNet struct {
	lan, gz, isp string
	svc          *Service
	stop         func() error
}

func newClatNet(t *testing.T) *clatNet {
	t.Helper()
	testns.NeedRoot(t)
	depstest.Require(t, deps.Lab)
	n := &clatNet{lan: testns.New(t, "clat-l"), gz: testns.New(t, "clat-g"), isp: testns.New(t, "clat-i")}
	for _, ns := range []string{n.lan, n.gz, n.isp} {
		testns.Sysctl(t, ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	}
	testns.Veth(t, n.lan, "eth0", n.gz, "lan0")
	testns.Veth(t, n.gz, "uplink0", n.isp, "gizmo0")
	testns.Up(t, n.lan, "eth0", legacyHost.String()+"/24")
	testns.Up(t, n.gz, "lan0", gizmoLAN4.String()+"/24")
	testns.Up(t, n.gz, "uplink0", gizmoWAN6.String()+"/64")
	testns.Up(t, n.isp, "gizmo0", ispWAN6.String()+"/64")
	testns.IP(t, "-n", n.isp, "addr", "add", remote4.String()+"/32", "dev", "lo")
	testns.IP(t, "-n", n.lan, "route", "add", "default", "via", gizmoLAN4.String())
	testns.IP(t, "-n", n.gz, "-6", "route", "add", "default", "via", ispWAN6.String())
	testns.IP(t, "-n", n.isp, "-6", "route", "add", clatPrefix.String(), "via", gizmoWAN6.String())
	n.startTayga(t)
	n.serve(t)

	svc, err := New(Config{WAN: "uplink0"})
	if err != nil {
		t.Fatal(err)
	}
	n.svc = svc
	n.stop = testns.Start(t, n.gz, svc.Run)
	return n
}

// startTayga runs tayga in the ISP's namespace as its NAT64 for
// testPref64, with a dynamic IPv4 pool (as the lab's ISP does).
func (n *clatNet) startTayga(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "tayga.conf")
	c := fmt.Sprintf("tun-device nat64\nipv4-addr %s\nprefix %s\ndynamic-pool %s\ndata-dir %s\n", taygaIPv4, testPref64, taygaPool, dir)
	if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	testns.Exec(t, n.isp, "tayga", "-c", conf, "--mktun")
	testns.IP(t, "-n", n.isp, "link", "set", "nat64", "up")
	testns.IP(t, "-n", n.isp, "route", "add", taygaPool.String(), "dev", "nat64")
	testns.IP(t, "-n", n.isp, "-6", "route", "add", testPref64.String(), "dev", "nat64")
	testns.StartCommand(t, testns.Command(n.isp, "tayga", "-c", conf, "--nodetach"))
}

// serve answers TCP on remote4 in the ISP's namespace: a line gets the
// client's address back, "bulk N" N bytes (and the client's N bytes are
// read first).
func (n *clatNet) serve(t *testing.T) {
	t.Helper()
	testns.ServeTCP(t, n.isp, "tcp4", netip.AddrPortFrom(remote4, uint16(serverPort)).String(), func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		line, _ := r.ReadString('\n')
		var size int
		if _, err := fmt.Sscanf(line, "bulk %d", &size); err == nil {
			if _, err := io.CopyN(io.Discard, r, int64(size)); err != nil {
				return
			}
			c.Write(bytes.Repeat([]byte{'x'}, size))
			return
		}
		fmt.Fprintf(c, "client=%s got=%s", c.RemoteAddr().(*net.TCPAddr).IP, line)
	})
}

func (n *clatNet) plan(t *testing.T) Plan {
	t.Helper()
	var idx int
	if err := testns.Do(n.gz, func() error {
		ifi, err := net.InterfaceByName("uplink0")
		if ifi != nil {
			idx = ifi.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return Plan{Pref64: testPref64, Address: state464(clatPrefix), WANIfindex: idx, WANMTU: 1500}
}

// state464 is the CLAT address in a /64 with the interface identifier the
// daemon's plan uses.
func state464(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	b[14], b[15] = 0x04, 0x64
	return netip.AddrFrom16(b)
}

// talk connects from the legacy host to the IPv4 server, giving up when
// ctx ends, and runs converse on the connection, which must be over within
// timeout.
func (n *clatNet) talk(ctx context.Context, timeout time.Duration, converse func(c net.Conn) error) error {
	return testns.Do(n.lan, func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", netip.AddrPortFrom(remote4, uint16(serverPort)).String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		return converse(c)
	})
}

// fetch connects from the legacy host to the IPv4 server and returns its
// answer.
func (n *clatNet) fetch(ctx context.Context) (string, error) {
	var out string
	err := n.talk(ctx, 3*time.Second, func(c net.Conn) error {
		if _, err := fmt.Fprintf(c, "hello from %s\n", legacyHost); err != nil {
			return err
		}
		b := make([]byte, 256)
		k, err := c.Read(b)
		out = string(b[:k])
		return err
	})
	return out, err
}

// bulk sends size bytes from the legacy host and reads as many back:
// full-sized segments both ways.
func (n *clatNet) bulk(size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return n.talk(ctx, 10*time.Second, func(c net.Conn) error {
		if _, err := fmt.Fprintf(c, "bulk %d\n", size); err != nil {
			return err
		}
		if _, err := c.Write(bytes.Repeat([]byte{'y'}, size)); err != nil {
			return err
		}
		got, err := io.Copy(io.Discard, c)
		if err != nil || got != int64(size) {
			return fmt.Errorf("got %d of %d bytes back: %v", got, size, err)
		}
		return nil
	})
}

func ipOut(ns string, args ...string) string {
	out, _ := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	return string(out)
}

// RFC 6877: a legacy IPv4 host reaches an IPv4 server through the gizmo's
// CLAT and the ISP's NAT64 (tayga), by TCP and ping; the kernel answers a
// too-big DF packet with clat0's MTU; traceroute sees the router between
// the CLAT and the NAT64 as 192.0.0.8 (RFC 6791) and the server by its
// own address; and stopping removes everything.
func TestNetnsLegacyHostThroughNAT64(t *testing.T) {
	n := newClatNet(t)
	p := n.plan(t)
	n.svc.Update(p)
	testns.WaitFor(t, "the CLAT's default route", netnsDeploy, func() (bool, string) {
		out := ipOut(n.gz, "route", "show", "default")
		return strings.Contains(out, "dev "+Interface), out
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("TCP", func(t *testing.T) {
		var body string
		testns.WaitFor(t, "a TCP exchange", netnsDeploy, func() (bool, string) {
			var err error
			body, err = n.fetch(ctx)
			return err == nil, fmt.Sprint(body, err)
		})
		client, _, _ := strings.Cut(strings.TrimPrefix(body, "client="), " ")
		a, err := netip.ParseAddr(client)
		if err != nil || !taygaPool.Contains(a) {
			t.Errorf("the server saw client %q, want an address of the NAT64's pool %s", client, taygaPool)
		}
		if !strings.Contains(body, "hello from "+legacyHost.String()) {
			t.Errorf("answer %q", body)
		}
	})
	t.Run("ping", func(t *testing.T) {
		testns.Exec(t, n.lan, "ping", "-c", "2", "-W", "2", remote4.String())
	})
	t.Run("RFC 6877 §5: Fragmentation Needed with clat0's MTU", func(t *testing.T) {
		out, _ := exec.Command("ip", "netns", "exec", n.lan, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1460", remote4.String()).CombinedOutput()
		if want := fmt.Sprintf("mtu = %d", p.MTU()); !strings.Contains(string(out), want) {
			t.Errorf("ping of 1488 bytes with DF: want %q in\n%s", want, out)
		}
	})
	t.Run("RFC 6877 §5: full-sized TCP segments both ways (MSS clamped)", func(t *testing.T) {
		if err := n.bulk(1 << 20); err != nil {
			t.Error(err)
		}
	})
	t.Run("RFC 6791: traceroute through the CLAT", func(t *testing.T) {
		out, _ := exec.Command("ip", "netns", "exec", n.lan, "traceroute", "-n", "-q", "1", "-w", "2", "-m", "5", remote4.String()).CombinedOutput()
		for _, want := range []string{gizmoLAN4.String(), Dummy4.String(), remote4.String()} {
			if !strings.Contains(string(out), " "+want+" ") {
				t.Errorf("traceroute: no hop %s in\n%s", want, out)
			}
		}
	})
	st := n.svc.Stats()
	if !st.Running || st.Address != p.Address || st.Counters["translated_out"] == 0 || st.Counters["translated_in"] == 0 || st.Counters["icmp_error_translated"] == 0 {
		t.Errorf("stats %+v", st)
	}

	if err := n.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if out := ipOut(n.gz, "link", "show", Interface); !strings.Contains(out, "does not exist") {
		t.Errorf("%s left behind: %s", Interface, out)
	}
	if out := ipOut(n.gz, "route", "show", "proto", fmt.Sprint(int(routeProtocol))); strings.TrimSpace(out) != "" {
		t.Errorf("routes left behind: %s", out)
	}
	out, _ := exec.Command("ip", "netns", "exec", n.gz, "nft", "list", "tables").CombinedOutput()
	if strings.Contains(string(out), NAT44Table) {
		t.Errorf("nftables table %s left behind", NAT44Table)
	}
}

// Without a delegation the CLAT address is in the WAN's own /64: the gizmo
// holds it there, so that the ISP's router finds it by neighbour
// discovery (Plan.ClaimOnWAN), and lets it go when the plan changes.
func TestNetnsClaimOnWAN(t *testing.T) {
	n := newClatNet(t)
	p := n.plan(t)
	p.Address = state464(netip.PrefixFrom(gizmoWAN6, 64).Masked())
	p.ClaimOnWAN = true
	// The ISP routes nothing to the gizmo for this address: it is on-link.
	testns.IP(t, "-n", n.isp, "-6", "route", "del", clatPrefix.String())
	n.svc.Update(p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testns.WaitFor(t, "a TCP exchange from the WAN /64", netnsDeploy, func() (bool, string) {
		body, err := n.fetch(ctx)
		return err == nil, fmt.Sprint(body, err)
	})
	if out := ipOut(n.gz, "-6", "addr", "show", "dev", "uplink0"); !strings.Contains(out, p.Address.String()+"/128") || !strings.Contains(out, "deprecated") {
		t.Errorf("the claimed address is not on uplink0, deprecated:\n%s", out)
	}
	n.svc.Update(Plan{})
	testns.WaitFor(t, "the claim to go", netnsDeploy, func() (bool, string) {
		out := ipOut(n.gz, "-6", "addr", "show", "dev", "uplink0")
		return !strings.Contains(out, p.Address.String()), out
	})
}

// A daemon that crashed leaves clat0, its routes and the NAT44 table
// behind: the next one removes them with its first plan, even when that
// plan has no CLAT.
func TestNetnsLeftoversRemoved(t *testing.T) {
	testns.NeedRoot(t)
	depstest.Require(t, deps.Lab)
	gz := testns.New(t, "clat-g")
	testns.Veth(t, gz, "uplink0", gz, "uplink0-peer")
	for _, s := range [][]string{
		{"-n", gz, "link", "add", Interface, "type", "veth", "peer", "name", Peer},
		{"-n", gz, "link", "set", Interface, "up"},
		{"-n", gz, "route", "add", "default", "dev", Interface, "proto", fmt.Sprint(int(routeProtocol))},
	} {
		testns.IP(t, s...)
	}
	testns.Exec(t, gz, "nft", "add", "table", "ip", NAT44Table)
	svc, err := New(Config{WAN: "uplink0"})
	if err != nil {
		t.Fatal(err)
	}
	testns.Start(t, gz, svc.Run)
	svc.Update(Plan{})
	testns.WaitFor(t, "the leftovers to go", netnsDeploy, func() (bool, string) {
		link := ipOut(gz, "link", "show", Interface)
		route := ipOut(gz, "route", "show", "default")
		tables, _ := exec.Command("ip", "netns", "exec", gz, "nft", "list", "tables").CombinedOutput()
		return strings.Contains(link, "does not exist") && strings.TrimSpace(route) == "" && !strings.Contains(string(tables), NAT44Table),
			link + route + string(tables)
	})
}
