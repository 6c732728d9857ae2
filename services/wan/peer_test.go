package wan

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// The real-peer test: radvd and Kea's DHCPv4 server in a gzt-wans-*
// namespace play the ISP; the WAN service runs in gzt-wanc-*, inside a child
// process started with `ip netns exec` so that all its sockets, netlink
// subscriptions and sysctls are that namespace's. radvd 2.19 cannot send
// PREF64, so a second helper child sends RAs with only a PREF64 option
// (router lifetime 0) from a second link-local address.

const (
	envRole  = "GZT_WAN_ROLE"
	envState = "GZT_WAN_STATE"
)

// startIn starts a peer in namespace ns with its output in dir/name.log,
// stopped when the test ends.
func startIn(t *testing.T, dir, ns, name string, env []string, args ...string) {
	t.Helper()
	cmd := testns.Command(ns, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	cmd.Stdout, cmd.Stderr = out, out
	testns.StartCommand(t, cmd)
}

func TestUpstreamPeers(t *testing.T) {
	if os.Getenv(envRole) != "" {
		t.Skip("parent test")
	}
	testns.NeedRoot(t)
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	client, server := testns.New(t, "wanc"), testns.New(t, "wans")
	dir := t.TempDir()
	for _, ns := range []string{client, server} {
		testns.Sysctl(t, ns, "net.ipv6.conf.default.accept_dad=0")
	}
	testns.Sysctl(t, server, "net.ipv6.conf.all.forwarding=1")
	testns.Veth(t, client, "uplink0", server, "isp0")
	testns.IP(t, "-n", server, "link", "set", "isp0", "up")
	// Carrier on isp0 before the servers start: Kea does not retry sockets
	// it could not open.
	testns.IP(t, "-n", client, "link", "set", "uplink0", "up")
	testns.IP(t, "-n", server, "addr", "add", "2001:db8:0:1::1/64", "dev", "isp0", "nodad")
	// Two upstream "routers" on isp0: radvd on fe80::1, the PREF64
	// announcer on fe80::64.
	testns.IP(t, "-n", server, "addr", "add", "fe80::1/64", "dev", "isp0", "nodad")
	testns.IP(t, "-n", server, "addr", "add", "fe80::64/64", "dev", "isp0", "nodad")
	testns.IP(t, "-n", server, "addr", "add", "192.0.2.1/24", "dev", "isp0")

	radvdConf := filepath.Join(dir, "radvd.conf")
	os.WriteFile(radvdConf, []byte(`interface isp0 {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvLinkMTU 1480;
	AdvRASrcAddress { fe80::1; };
	prefix 2001:db8:0:1::/64 { AdvOnLink on; AdvAutonomous on; };
	route 2001:db8:ffff::/48 { AdvRoutePreference high; AdvRouteLifetime 600; };
	RDNSS 2001:db8:0:1::53 { };
};
`), 0o644)
	startIn(t, dir, server, "radvd", nil, "radvd", "-n", "-C", radvdConf, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr")

	kea := map[string]any{"Dhcp4": map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{"isp0"}},
		"lease-database":    map[string]any{"type": "memfile", "name": filepath.Join(dir, "kea4.leases"), "lfc-interval": 0},
		// Short timers so that a renewal happens within the test.
		"valid-lifetime": 30, "renew-timer": 3, "rebind-timer": 20,
		"subnet4": []map[string]any{{
			"id": 1, "subnet": "192.0.2.0/24", "interface": "isp0",
			"pools": []map[string]any{{"pool": "192.0.2.100 - 192.0.2.199"}},
			"option-data": []map[string]any{
				{"name": "routers", "data": "192.0.2.1"},
				{"name": "domain-name-servers", "data": "192.0.2.53"},
				{"name": "ntp-servers", "data": "192.0.2.1"},
			},
		}},
		"loggers": []map[string]any{{"name": "kea-dhcp4", "severity": "INFO", "output_options": []map[string]any{{"output": "stdout"}}}},
	}}
	b, _ := json.Marshal(kea)
	keaConf := filepath.Join(dir, "kea-dhcp4.conf")
	os.WriteFile(keaConf, b, 0o644)
	startIn(t, dir, server, "kea", []string{"KEA_PIDFILE_DIR=" + dir, "KEA_LOCKFILE_DIR=" + dir}, "kea-dhcp4", "-c", keaConf)

	startIn(t, dir, server, "pref64", []string{envRole + "=pref64"}, os.Args[0], "-test.run=^TestPeerPREF64Sender$")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := testns.CommandContext(ctx, client, os.Args[0], "-test.run=^TestPeerWANChild$", "-test.v")
	cmd.Env = append(os.Environ(), envRole+"=wan", envState+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		for _, f := range []string{"radvd", "kea", "pref64"} {
			b, _ := os.ReadFile(filepath.Join(dir, f+".log"))
			t.Logf("%s:\n%s", f, b)
		}
		t.Fatalf("WAN child failed: %v", err)
	}

	// Option 42 (RFC 2132 §8.3) through the same client, in each kind of
	// exchange.
	cmd = exec.CommandContext(ctx, "ip", "netns", "exec", client, os.Args[0], "-test.run=^TestPeerNTPChild$", "-test.v")
	cmd.Env = append(os.Environ(), envRole+"=ntp")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestPeerNTPChild") {
		t.Fatalf("NTP child failed: %v\n%s", err, out)
	}
}

// TestPeerPREF64Sender is the second upstream "router": it advertises only
// PREF64 (RFC 8781) every second, with router lifetime 0.
func TestPeerPREF64Sender(t *testing.T) {
	if os.Getenv(envRole) != "pref64" {
		t.Skip("helper of TestUpstreamPeers")
	}
	ifi, err := net.InterfaceByName("isp0")
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := ndp.Listen(ifi, ndp.Addr("fe80::64"))
	if err != nil {
		t.Fatal(err)
	}
	ra := &ndp.RouterAdvertisement{CurrentHopLimit: 64, Options: []ndp.Option{
		&ndp.PREF64{Lifetime: 600 * time.Second, Prefix: netip.MustParsePrefix("2001:db8:64::/96")},
	}}
	for {
		if err := conn.WriteTo(ra, nil, netip.IPv6LinkLocalAllNodes()); err != nil {
			t.Log(err)
		}
		time.Sleep(time.Second)
	}
}

type waiter[T any] struct {
	t    *testing.T
	ch   chan T
	last T
}

// drain forgets the events so far, so that until sees only what follows.
func (w *waiter[T]) drain() {
	for {
		select {
		case v := <-w.ch:
			w.last = v
		default:
			return
		}
	}
}

func (w *waiter[T]) until(what string, cond func(T) bool) T {
	w.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case v := <-w.ch:
			w.last = v
			if cond(v) {
				return v
			}
		case <-timeout:
			w.t.Fatalf("timed out waiting for %s; last: %+v", what, w.last)
		}
	}
}

func startWAN(t *testing.T, ctx context.Context, stateDir string) (*Service, *waiter[Upstream], *waiter[*IPv4Lease], chan error) {
	ups := &waiter[Upstream]{t: t, ch: make(chan Upstream, 1024)}
	v4 := &waiter[*IPv4Lease]{t: t, ch: make(chan *IPv4Lease, 64)}
	s, err := New(Config{
		Interface: "uplink0", StateDir: stateDir,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnUpstream: func(u Upstream) { ups.ch <- u },
		OnIPv4:     func(l *IPv4Lease) { v4.ch <- l },
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return s, ups, v4, done
}

func readSysctl(t *testing.T, p string) string {
	b, err := os.ReadFile(filepath.Join("/proc/sys", p))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func unreachables(t *testing.T) []string {
	t.Helper()
	rs, err := netlink.RouteListFiltered(unix.AF_INET6, &netlink.Route{Type: unix.RTN_UNREACHABLE, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_TYPE|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Dst != nil {
			out = append(out, r.Dst.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestPeerWANChild runs in the client namespace.
func TestPeerWANChild(t *testing.T) {
	if os.Getenv(envRole) != "wan" {
		t.Skip("child of TestUpstreamPeers")
	}
	stateDir := os.Getenv(envState)
	ctx, cancel := context.WithCancel(context.Background())
	s, ups, v4, done := startWAN(t, ctx, stateDir)

	onlink := netip.MustParsePrefix("2001:db8:0:1::/64")
	u := ups.until("the upstream RA, PREF64 and a SLAAC address", func(u Upstream) bool {
		return u.Router.IsValid() && u.Pref64.IsValid() && len(u.Addrs) > 0
	})
	// The sysctls of a router that still takes SLAAC from upstream.
	for k, want := range map[string]string{
		"net/ipv6/conf/all/forwarding":                     "1",
		"net/ipv6/conf/uplink0/accept_ra":                  "2",
		"net/ipv6/conf/uplink0/accept_ra_rt_info_max_plen": "128",
		"net/ipv4/ip_forward":                              "1",
	} {
		if got := readSysctl(t, k); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}

	if u.Router.WithZone("") != netip.MustParseAddr("fe80::1") || u.RouterPreference != 0 {
		t.Errorf("router %v preference %d", u.Router, u.RouterPreference)
	}
	if u.MTU != 1480 {
		t.Errorf("MTU %d, want radvd's 1480", u.MTU)
	}
	if len(u.RDNSS) != 1 || u.RDNSS[0] != netip.MustParseAddr("2001:db8:0:1::53") {
		t.Errorf("RDNSS %v", u.RDNSS)
	}
	if u.Pref64 != netip.MustParsePrefix("2001:db8:64::/96") {
		t.Errorf("PREF64 %v", u.Pref64)
	}
	if len(u.Routes) != 1 || u.Routes[0].Prefix != netip.MustParsePrefix("2001:db8:ffff::/48") || u.Routes[0].Preference != 1 {
		t.Errorf("routes %+v", u.Routes)
	}
	if len(u.Prefixes) != 1 || u.Prefixes[0].Prefix != onlink || !u.Prefixes[0].Autonomous {
		t.Errorf("prefixes %+v", u.Prefixes)
	}
	for _, a := range u.Addrs {
		if !onlink.Contains(a.Addr()) {
			t.Errorf("WAN address %v outside %v", a, onlink)
		}
	}
	// The kernel honoured the RIO (accept_ra_rt_info_max_plen) and the
	// default route, despite forwarding=1.
	rio, err := netlink.RouteListFiltered(unix.AF_INET6, &netlink.Route{Dst: &net.IPNet{IP: net.ParseIP("2001:db8:ffff::"), Mask: net.CIDRMask(48, 128)}}, netlink.RT_FILTER_DST)
	if err != nil || len(rio) != 1 || rio[0].Protocol != unix.RTPROT_RA {
		t.Errorf("kernel route for the RIO: %v %v", rio, err)
	}

	// IPv4 from Kea: address and default route in the kernel.
	l := v4.until("a DHCPv4 lease", func(l *IPv4Lease) bool { return l != nil })
	if !netip.MustParsePrefix("192.0.2.0/24").Contains(l.Addr.Addr()) || l.Addr.Bits() != 24 ||
		l.Router != netip.MustParseAddr("192.0.2.1") || len(l.DNS) != 1 || l.DNS[0] != netip.MustParseAddr("192.0.2.53") {
		t.Errorf("IPv4 lease %+v", l)
	}
	link, _ := netlink.LinkByName("uplink0")
	addrs, _ := netlink.AddrList(link, unix.AF_INET)
	if len(addrs) != 1 || addrs[0].IPNet.String() != l.Addr.String() {
		t.Errorf("uplink0 IPv4 addresses %v, want %v", addrs, l.Addr)
	}
	def, _ := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}, netlink.RT_FILTER_DST)
	if len(def) != 1 || !def[0].Gw.Equal(net.ParseIP("192.0.2.1")) {
		t.Errorf("IPv4 default route %v", def)
	}
	if out, err := exec.Command("ping", "-c1", "-W2", "192.0.2.1").CombinedOutput(); err != nil {
		t.Errorf("ping the ISP over the leased address: %v\n%s", err, out)
	}
	// Renew at T1 (3 s) extends the lease.
	first := l
	l = v4.until("a renewed DHCPv4 lease", func(x *IPv4Lease) bool {
		return x != nil && x.Expires.After(first.Expires) && s.Stats().DHCPv4Renews > 0
	})
	if l.Addr != first.Addr || s.Stats().DHCPv4Renews < 1 {
		t.Errorf("renewal gave %v (was %v), %d renews", l.Addr, first.Addr, s.Stats().DHCPv4Renews)
	}

	// RFC 7084 WPD-5: unreachable route for the delegated prefix, replaced
	// when it changes and removed when it goes away.
	s.Update(Plan{Delegated: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000:100::/56")}})
	waitFor(t, "unreachable 2001:db8:1000:100::/56", func() bool {
		return slices.Equal(unreachables(t), []string{"2001:db8:1000:100::/56"})
	})
	s.Update(Plan{Delegated: []netip.Prefix{netip.MustParsePrefix("2001:db8:2000:200::/56"), netip.MustParsePrefix("2001:db8:1000:100::/56")}})
	s.Update(Plan{Delegated: []netip.Prefix{netip.MustParsePrefix("2001:db8:2000:200::/56")}})
	waitFor(t, "only unreachable 2001:db8:2000:200::/56", func() bool {
		return slices.Equal(unreachables(t), []string{"2001:db8:2000:200::/56"})
	})

	// A link flap: reported, RS sent again, RA state kept, DHCPv4 re-verified.
	before := s.Stats()
	rsBefore, rebindsBefore := before.RouterSolicits, before.DHCPv4Rebinds
	ups.drain()
	if err := netlink.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	down := ups.until("link down", func(u Upstream) bool { return !u.Up })
	if !down.Router.IsValid() || len(down.RDNSS) != 1 || !down.Pref64.IsValid() {
		t.Errorf("link down lost the upstream view: %+v", down)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	ups.until("link up with a SLAAC address again", func(u Upstream) bool { return u.Up && len(u.Addrs) > 0 && u.Router.IsValid() })
	waitFor(t, "a router solicitation and a DHCPv4 rebind after the flap", func() bool {
		st := s.Stats()
		return st.RouterSolicits > rsBefore && st.DHCPv4Rebinds > rebindsBefore && st.IPv4 != nil
	}, func() string { return fmt.Sprintf("%+v", s.Stats()) })
	if got := s.Stats().IPv4; got.Addr != first.Addr {
		t.Errorf("after the flap: %v, want %v", got.Addr, first.Addr)
	}
	if st := s.Stats(); st.LinkDowns-before.LinkDowns != 1 || st.LinkUps-before.LinkUps != 1 {
		t.Errorf("flap counted as %d downs, %d ups", st.LinkDowns-before.LinkDowns, st.LinkUps-before.LinkUps)
	}

	// Stop: the unreachable route goes, the IPv4 address stays for the
	// restart, which confirms it (INIT-REBOOT) instead of a new DORA.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := unreachables(t); len(got) != 0 {
		t.Errorf("unreachable routes left after Run: %v", got)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	s2, _, v4b, done2 := startWAN(t, ctx2, stateDir)
	l2 := v4b.until("the DHCPv4 lease after restart", func(l *IPv4Lease) bool { return l != nil })
	if l2.Addr != first.Addr {
		t.Errorf("after restart: %v, want %v", l2.Addr, first.Addr)
	}
	if st := s2.Stats(); st.DHCPv4Discovers != 0 || st.DHCPv4Rebinds != 1 {
		t.Errorf("restart: %d discovers, %d rebinds; want INIT-REBOOT only", st.DHCPv4Discovers, st.DHCPv4Rebinds)
	}
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	fmt.Println("WAN child done")
}

func waitFor(t *testing.T, what string, cond func() bool, show ...func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range show {
				t.Log(f())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
