package ndproxy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// proxyNet is the RFC 7278 situation in three test namespaces:
//
//	upstream (up0: 2001:db8:0:1::1/64, the /64's router)
//	   └── wan0 ── gizmo ── lan0 (fd00:7278::1/64)
//	                          └── eth0 host (fd00:7278::2/64, default via the gizmo)
//
// The gizmo holds 2001:db8:0:1::2/64 on wan0, as from SLAAC; the host's
// addresses in the shared /64 are added by the tests, as SLAAC with an
// off-link PIO would (a /64 without a prefix route).
type proxyNet struct {
	up, gizmo, host string
}

func newProxyNet(t *testing.T) *proxyNet {
	t.Helper()
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	n := &proxyNet{up: testns.New(t, "ndu"), gizmo: testns.New(t, "ndg"), host: testns.New(t, "ndh")}
	// No DAD on the routers' links (set before the links exist, so that
	// they inherit it), so that their addresses are usable at once.
	testns.Sysctl(t, n.gizmo, "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	testns.Sysctl(t, n.up, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	testns.Veth(t, n.gizmo, "wan0", n.up, "up0")
	testns.Veth(t, n.gizmo, "lan0", n.host, "eth0")
	// The host does DAD (one probe, quickly): that is how the proxy
	// learns its addresses.
	testns.Sysctl(t, n.host, "net.ipv6.conf.eth0.accept_dad=1", "net.ipv6.conf.eth0.dad_transmits=1", "net.ipv6.neigh.eth0.retrans_time_ms=200", "net.ipv6.conf.eth0.accept_ra=0")
	testns.IP(t, "-n", n.up, "addr", "add", "2001:db8:0:1::1/64", "dev", "up0", "nodad")
	testns.IP(t, "-n", n.gizmo, "addr", "add", "2001:db8:0:1::2/64", "dev", "wan0", "nodad")
	testns.IP(t, "-n", n.gizmo, "addr", "add", "fd00:7278::1/64", "dev", "lan0", "nodad")
	for _, l := range [][2]string{{n.up, "up0"}, {n.gizmo, "wan0"}, {n.gizmo, "lan0"}, {n.host, "eth0"}} {
		testns.IP(t, "-n", l[0], "link", "set", l[1], "up")
	}
	testns.IP(t, "-n", n.host, "addr", "add", "fd00:7278::2/64", "dev", "eth0", "nodad")
	testns.IP(t, "-n", n.host, "-6", "route", "add", "default", "via", "fd00:7278::1", "dev", "eth0")
	return n
}

// start runs the service in the gizmo namespace; the returned stop
// cancels it and returns Run's error.
func (n *proxyNet) start(t *testing.T, cfg Config) (*Service, func() error) {
	t.Helper()
	cfg.WAN, cfg.LAN = "wan0", "lan0"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, testns.Start(t, n.gizmo, s.Run)
}

// addHostAddr gives the host an address in the shared /64 as SLAAC does
// for an off-link PIO: the /64 without a prefix route, after DAD.
// share gives s the shared /64 and waits until it proxies on the uplink.
func (n *proxyNet) share(t *testing.T, s *Service) {
	t.Helper()
	s.Update(sharedPlan())
	testns.WaitFor(t, "the service to listen", 5*time.Second, func() (bool, string) {
		out := testns.Exec(t, n.gizmo, "sysctl", "-n", "net.ipv6.conf.wan0.proxy_ndp")
		return strings.TrimSpace(out) == "1", out
	})
	time.Sleep(200 * time.Millisecond) // the packet sockets open after the sysctl
}

// addSilentHostAddr gives the host address a without DAD, so the proxy
// never hears of it until someone solicits it.
func (n *proxyNet) addSilentHostAddr(t *testing.T, a string) {
	t.Helper()
	testns.IP(t, "-n", n.host, "addr", "add", a+"/64", "dev", "eth0", "noprefixroute", "nodad")
}

func (n *proxyNet) addHostAddr(t *testing.T, a string) {
	t.Helper()
	testns.IP(t, "-n", n.host, "addr", "add", a+"/64", "dev", "eth0", "noprefixroute")
	testns.WaitFor(t, "DAD of "+a, 5*time.Second, func() (bool, string) {
		out := testns.IP(t, "-n", n.host, "-6", "addr", "show", "dev", "eth0")
		return strings.Contains(out, a+"/64") && !strings.Contains(out, "tentative"), out
	})
}

// ping tries a few times: the first echo may wait for two address
// resolutions, one of them a proxy's answer, which RFC 4861 §7.2.8 delays
// by up to a second.
func ping(ns, from, to string) (string, bool) {
	args := []string{"ping", "-6", "-c", "1", "-W", "1"}
	if from != "" {
		args = append(args, "-I", from)
	}
	args = append(args, to)
	var out []byte
	for range 5 {
		var err error
		if out, err = testns.Command(ns, args...).CombinedOutput(); err == nil {
			return string(out), true
		}
	}
	return string(out), false
}

const (
	sharedPrefix = "2001:db8:0:1::/64"
	hostShared   = "2001:db8:0:1:0:ff:fe00:210"
	hostTemp     = "2001:db8:0:1:a1b2:c3d4:e5f6:789"
)

func sharedPlan() Plan {
	return Plan{Prefix: netip.MustParsePrefix(sharedPrefix), Own: []netip.Addr{netip.MustParseAddr("2001:db8:0:1::2")}}
}

// RFC 7278 §4.3 / RFC 4389: a LAN host's address in the upstream /64,
// learned from its DAD probe alone, is reachable from the upstream, and
// the host reaches the upstream's router in the same /64 through the
// gizmo. Stopping the service leaves no proxy entry, route or sysctl.
func TestProxySharesTheUpstream64(t *testing.T) {
	n := newProxyNet(t)
	s, stop := n.start(t, Config{})
	n.share(t, s)
	n.addHostAddr(t, hostShared)

	testns.WaitFor(t, "the host's address to be proxied", 5*time.Second, func() (bool, string) {
		st := s.Stats()
		return len(st.Proxied) == 1 && st.Proxied[0].String() == hostShared, ""
	})
	if st := s.Stats(); st.DADSeen == 0 {
		t.Errorf("DADSeen = 0, but the address was learned from its DAD probe: %+v", st)
	}
	out := testns.IP(t, "-n", n.gizmo, "-6", "neigh", "show", "proxy")
	if !strings.Contains(out, hostShared+" dev wan0") {
		t.Errorf("proxy entries on the gizmo: %q, want %s on wan0", out, hostShared)
	}
	out = testns.IP(t, "-n", n.gizmo, "-6", "route", "show", hostShared)
	if !strings.Contains(out, "dev lan0") {
		t.Errorf("route to %s: %q, want via lan0", hostShared, out)
	}

	// The upstream resolves the address on its link and the gizmo answers.
	if out, ok := ping(n.up, "", hostShared); !ok {
		t.Fatalf("the upstream cannot ping the LAN host's %s:\n%s", hostShared, out)
	}
	// The LAN host reaches a WAN-side neighbour in the same /64 (the
	// upstream router) through the gizmo, from its shared address.
	if out, ok := ping(n.host, hostShared, "2001:db8:0:1::1"); !ok {
		t.Errorf("the LAN host cannot ping the upstream router from %s:\n%s", hostShared, out)
	}
	// The gizmo keeps reaching the upstream on its own /64 route.
	if out, ok := ping(n.gizmo, "", "2001:db8:0:1::1"); !ok {
		t.Errorf("the gizmo cannot ping the upstream router:\n%s", out)
	}
	if st := s.Stats(); st.NSAnswered+st.DADDefended == 0 {
		t.Errorf("no upstream NS for the proxied address counted: %+v", st)
	}

	// The prefix goes (a delegation arrived, the upstream withdrew it):
	// every entry is withdrawn and the proxy goes idle, still running.
	s.Update(Plan{})
	testns.WaitFor(t, "the proxy to go idle", 5*time.Second, func() (bool, string) {
		out := testns.Exec(t, n.gizmo, "sysctl", "-n", "net.ipv6.conf.wan0.proxy_ndp")
		return strings.TrimSpace(out) == "0" && len(s.Stats().Proxied) == 0, out
	})
	if out := testns.IP(t, "-n", n.gizmo, "-6", "neigh", "show", "proxy"); strings.TrimSpace(out) != "" {
		t.Errorf("proxy entries left after the prefix went: %q", out)
	}
	s.Update(sharedPlan())
	testns.WaitFor(t, "the proxy to come back", 10*time.Second, func() (bool, string) {
		return len(s.Stats().Proxied) == 1, ""
	})

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out := testns.IP(t, "-n", n.gizmo, "-6", "neigh", "show", "proxy"); strings.TrimSpace(out) != "" {
		t.Errorf("proxy entries left after Run returned: %q", out)
	}
	if out := testns.IP(t, "-n", n.gizmo, "-6", "route", "show", "proto", "110"); strings.TrimSpace(out) != "" {
		t.Errorf("routes left after Run returned: %q", out)
	}
	for _, key := range []string{"net.ipv6.conf.all.proxy_ndp", "net.ipv6.conf.wan0.proxy_ndp"} {
		if out := testns.Exec(t, n.gizmo, "sysctl", "-n", key); strings.TrimSpace(out) != "0" {
			t.Errorf("%s = %s after Run returned, want it restored to 0", key, out)
		}
	}
}

// RFC 4861 §7.3.3: an address whose host stops answering ends FAILED in
// the LAN's neighbour table, and the proxy withdraws it; a host address
// the daemon only saw (a sighting in the plan) is proxied too; a sighting
// older than the failure does not bring it back.
func TestProxyWithdrawsGoneHosts(t *testing.T) {
	n := newProxyNet(t)
	// Neighbour Unreachability Detection at test speed (RFC 4861 §10
	// defaults are REACHABLE_TIME 30 s, DELAY_FIRST_PROBE_TIME 5 s).
	testns.Sysctl(t, n.gizmo, "net.ipv6.neigh.lan0.base_reachable_time_ms=500",
		"net.ipv6.neigh.lan0.delay_first_probe_time=1", "net.ipv6.neigh.lan0.retrans_time_ms=300")
	s, _ := n.start(t, Config{VerifyInterval: 300 * time.Millisecond})
	n.addSilentHostAddr(t, hostTemp)
	p := sharedPlan()
	seen := time.Now()
	p.Hosts = []Sighting{{Addr: netip.MustParseAddr(hostTemp), At: seen}}
	s.Update(p)
	testns.WaitFor(t, "the sighted address to be proxied", 5*time.Second, func() (bool, string) {
		return len(s.Stats().Proxied) == 1, ""
	})
	if out, ok := ping(n.up, "", hostTemp); !ok {
		t.Fatalf("the upstream cannot ping the sighted address %s:\n%s", hostTemp, out)
	}

	// The host drops the address (a temporary address past its lifetime).
	testns.IP(t, "-n", n.host, "addr", "del", hostTemp+"/64", "dev", "eth0")
	testns.WaitFor(t, "the gone address to be withdrawn", 20*time.Second, func() (bool, string) {
		st := s.Stats()
		return len(st.Proxied) == 0 && st.Failed == 1, ""
	})
	if out := testns.IP(t, "-n", n.gizmo, "-6", "neigh", "show", "proxy"); strings.TrimSpace(out) != "" {
		t.Errorf("proxy entries left for a gone host: %q", out)
	}
	// The daemon still remembers the old sighting; it must not count.
	s.Update(p)
	time.Sleep(time.Second)
	if st := s.Stats(); len(st.Proxied) != 0 {
		t.Errorf("an old sighting brought a failed address back: %v", st.Proxied)
	}
}

// RFC 4389 §4.1.3.1: a host that skipped DAD (and so never announced its
// address) is found when the upstream solicits its address: the proxy
// looks it up on the LAN and answers the upstream's next NS.
func TestProxyLooksUpUnknownAddresses(t *testing.T) {
	n := newProxyNet(t)
	s := n.reachSilentHost(t, n.up)
	// An address nobody on the LAN holds is looked up and not proxied.
	if out, ok := ping(n.up, "", "2001:db8:0:1::dead"); ok {
		t.Errorf("the upstream reached an address no one holds:\n%s", out)
	}
	if st := s.Stats(); len(st.Proxied) != 1 {
		t.Errorf("proxied %v, want only %s", st.Proxied, hostTemp)
	}
}

// A host that never spoke ND and gets its first packet from the gizmo
// itself (a NAT64 reply, translated in the gizmo): without a proxy route
// the kernel resolves the address on the uplink; the proxy sees that NS,
// finds the host on the LAN and routes the next packets to it.
func TestProxyLooksUpWhatTheGizmoResolvesOnTheUplink(t *testing.T) {
	n := newProxyNet(t)
	n.reachSilentHost(t, n.gizmo)
}

// reachSilentHost runs the proxy on the shared prefix, gives the host
// hostTemp without DAD and pings it from namespace ns: the proxy must have
// looked the address up on the LAN and proxy it, alone.
func (n *proxyNet) reachSilentHost(t *testing.T, ns string) *Service {
	t.Helper()
	s, _ := n.start(t, Config{})
	n.share(t, s)
	n.addSilentHostAddr(t, hostTemp)
	if out, ok := ping(ns, "", hostTemp); !ok {
		t.Fatalf("%s cannot ping %s, which the proxy had to look up:\n%s\nstats %+v", ns, hostTemp, out, s.Stats())
	}
	if st := s.Stats(); st.Lookups == 0 || len(st.Proxied) != 1 {
		t.Errorf("stats after the lookup: %+v, want Lookups > 0 and %s proxied", st, hostTemp)
	}
	return s
}
