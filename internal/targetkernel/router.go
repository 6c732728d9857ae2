package targetkernel

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Router says how to make the router of a cost measurement: lan0 and
// uplink0, bridges without ports (enough for addresses, routes,
// neighbours and the tc and XDP hooks), with what bpf_fib_lookup needs to
// answer as on a router.
type Router struct {
	// LAN and WAN are lan0's and uplink0's addresses, "2001:db8::1/64".
	LAN, WAN []string
	// Routes go through uplink0.
	Routes []Route
	// Neighbours are permanent entries, so that no lookup waits for ND
	// or ARP.
	Neighbours []Neighbour
}

// Route is a route through uplink0 to Dst ("" for the default route) via
// Gw.
type Route struct {
	Dst string
	Gw  net.IP
}

// Neighbour is a neighbour entry on uplink0 (WAN) or lan0.
type Neighbour struct {
	WAN bool
	IP  net.IP
	MAC net.HardwareAddr
}

// Make makes the router's links in the calling thread's network namespace
// (see InNewNetns), with IPv4 and IPv6 forwarding on, and returns lan0 and
// uplink0.
func (r Router) Make(t testing.TB) (lan, wan netlink.Link) {
	t.Helper()
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// A router forwards (bpf_fib_lookup answers FWD_DISABLED otherwise);
	// this thread's /proc/sys/net is its namespace's.
	for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		must(f, os.WriteFile(f, []byte("1"), 0o644))
	}
	lo, err := netlink.LinkByName("lo")
	must("lo", err)
	must("lo up", netlink.LinkSetUp(lo))
	link := func(name string, addrs []string) netlink.Link {
		must("add "+name, netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}))
		l, err := netlink.LinkByName(name)
		must(name, err)
		must(name+" up", netlink.LinkSetUp(l))
		for _, a := range addrs {
			na, err := netlink.ParseAddr(a)
			must(a, err)
			na.Flags |= unix.IFA_F_NODAD
			must("address "+a, netlink.AddrAdd(l, na))
		}
		return l
	}
	lan, wan = link("lan0", r.LAN), link("uplink0", r.WAN)
	for _, rt := range r.Routes {
		route := &netlink.Route{LinkIndex: wan.Attrs().Index, Gw: rt.Gw}
		if rt.Dst != "" {
			_, dst, err := net.ParseCIDR(rt.Dst)
			must("route to "+rt.Dst, err)
			route.Dst = dst
		}
		must(fmt.Sprintf("route to %q via %s", rt.Dst, rt.Gw), netlink.RouteAdd(route))
	}
	for _, n := range r.Neighbours {
		l := lan
		if n.WAN {
			l = wan
		}
		must(fmt.Sprintf("neighbour %s", n.IP), netlink.NeighAdd(&netlink.Neigh{LinkIndex: l.Attrs().Index,
			State: netlink.NUD_PERMANENT, IP: n.IP, HardwareAddr: n.MAC}))
	}
	return lan, wan
}
