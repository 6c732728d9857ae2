package firewall

import (
	"fmt"
	"os"
	"testing"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// topo is a small router in network namespaces, shaped like the lab's
// gz-isp ─ gz-gizmo ─ LAN but private to one test: wan (the ISP and the internet) —
// uplink0 [router] lan0 — lan (a LAN host).
type topo struct {
	router, wan, lan string
	routerNS         *os.File // for Config.NetNS
}

const (
	topoWAN6      = "2001:db8:0:1::1"       // the "internet" host on the WAN link
	topoRouterW6  = "2001:db8:0:1::100"     // the router's WAN address
	topoWAN4      = "192.0.2.1"             // the internet host's IPv4
	topoRouterW4  = "192.0.2.100"           // the router's WAN IPv4
	topoRouterL6  = "2001:db8:1000:100::1"  // the router on the LAN
	topoLANHost6  = "2001:db8:1000:100::5"  // the LAN host's plain address
	topoLANToken6 = "2001:db8:1000:100::80" // the LAN host's token address (::80)
	topoLANPriv6  = "2001:db8:1000:100:a1b2:c3d4:e5f6:789"
	topoRouterL4  = "203.0.113.129" // the router in the legacy pool
	topoLANHost4  = "203.0.113.140" // the LAN host's legacy address
)

func newTopo(t testing.TB) *topo {
	t.Helper()
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	tp := &topo{router: testns.New(t, "fw-r"), wan: testns.New(t, "fw-w"), lan: testns.New(t, "fw-l")}
	r, w, l := tp.router, tp.wan, tp.lan
	// No DAD before the links exist: a tentative link-local address
	// delays the first neighbour discovery by a second.
	for _, ns := range []string{r, w, l} {
		testns.Sysctl(t, ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	testns.Veth(t, r, "uplink0", w, "eth0")
	testns.Veth(t, r, "lan0", l, "eth0")
	testns.Sysctl(t, r, "net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1")
	testns.Up(t, r, "uplink0", topoRouterW6+"/64", topoRouterW4+"/24")
	testns.Up(t, r, "lan0", topoRouterL6+"/64", topoRouterL4+"/25")
	testns.Up(t, w, "eth0", topoWAN6+"/64", topoWAN4+"/24")
	testns.Up(t, l, "eth0", topoLANHost6+"/64", topoLANToken6+"/64", topoLANPriv6+"/64", topoLANHost4+"/25")
	cmds := [][]string{
		// The ISP routes the delegation to the router.
		{"-n", w, "route", "add", "2001:db8:1000:100::/56", "via", topoRouterW6},
		{"-n", l, "route", "add", "default", "via", topoRouterL6},
		{"-n", l, "route", "add", "default", "via", topoRouterL4},
		{"-n", r, "route", "add", "default", "via", topoWAN6},
	}
	for _, c := range cmds {
		testns.IP(t, c...)
	}
	// Wait until both paths work end to end (neighbour caches, link
	// state), so that the tests' first packets are not the ones that
	// wait for the links to come up.
	for _, path := range [][2]string{{l, topoWAN6}, {l, topoRouterW4}, {r, topoWAN4}} {
		var err error
		for range 20 {
			if err = testns.Command(path[0], "ping", "-c", "1", "-W", "1", path[1]).Run(); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("topology: %s cannot reach %s: %v", path[0], path[1], err)
		}
	}
	tp.routerNS = testns.Open(t, r)
	return tp
}

// service is a firewall for the router's namespace; its table goes when
// the test ends.
func (tp *topo) service(t testing.TB) *Service {
	t.Helper()
	s, err := New(Config{NetNS: int(tp.routerNS.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Remove() })
	return s
}

// firewall runs the service on the router's namespace with plan p applied,
// and removes its table when the test ends.
func (tp *topo) firewall(t *testing.T, p Plan) *Service {
	t.Helper()
	s := tp.service(t)
	if err := s.Apply(p); err != nil {
		t.Fatal(err)
	}
	return s
}

// topoPlan is the plan for newTopo's router.
func topoPlan() Plan {
	p := labPlan()
	p.WANIPv4 = a(topoRouterW4)
	return p
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil || n <= 0 {
		return def
	}
	return n
}
