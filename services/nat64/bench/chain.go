package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// chain is one mode's client ── router ── server namespaces. The client
// namespace is a LAN: its own interface eth0 (the host that measures
// throughput and UDP) and lanHosts more hosts, each a macvlan of eth0 with
// its own MAC and addresses, among which the connection test spreads its
// connections the way a home's hosts share the router.
type chain struct {
	c, r, s string
	hosts   []lanHost
}

// lanHost is one of the client namespace's macvlan hosts.
type lanHost struct {
	dev    string
	v6, v4 netip.Addr
}

// lanHosts is how many hosts share the connection test. With the shipped
// limits (a host's 16,384 sessions, an address's 8,192, closed TCP
// sessions held 4 minutes) sixteen hosts carry several thousand new
// connections a second for minutes without meeting a limit; one host
// meets its address's share within seconds (the "at the limit" row).
const lanHosts = 16

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func in(ns string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func newChain() (*chain, error) {
	id := fmt.Sprintf("gzt-bench-%04x", rand.IntN(0x10000))
	ch := &chain{c: id + "-c", r: id + "-r", s: id + "-s"}
	steps := [][]string{
		{"ip", "netns", "add", ch.c}, {"ip", "netns", "add", ch.r}, {"ip", "netns", "add", ch.s},
		{"ip", "link", "add", "lan0", "netns", ch.r, "type", "veth", "peer", "name", "eth0", "netns", ch.c},
		{"ip", "link", "add", "uplink0", "netns", ch.r, "type", "veth", "peer", "name", "eth0", "netns", ch.s},
		in(ch.c, "ip", "link", "set", "lo", "up"), in(ch.r, "ip", "link", "set", "lo", "up"), in(ch.s, "ip", "link", "set", "lo", "up"),
		// Each of the LAN's hosts answers ARP for its own address only.
		in(ch.c, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"),
		in(ch.c, "ip", "addr", "add", "2001:db8:1000::a/64", "dev", "eth0", "nodad"),
		in(ch.c, "ip", "addr", "add", "203.0.113.130/25", "dev", "eth0"),
		in(ch.c, "ip", "link", "set", "eth0", "up"),
		in(ch.c, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1"),
		in(ch.c, "ip", "route", "add", "default", "via", "203.0.113.129"),
		in(ch.r, "ip", "addr", "add", "2001:db8:1000::1/64", "dev", "lan0", "nodad"),
		in(ch.r, "ip", "addr", "add", "203.0.113.129/25", "dev", "lan0"),
		in(ch.r, "ip", "addr", "add", "192.0.2.100/24", "dev", "uplink0"),
		in(ch.r, "ip", "addr", "add", "2001:db8:0:1::2/64", "dev", "uplink0", "nodad"),
		in(ch.r, "ip", "link", "set", "lan0", "up"), in(ch.r, "ip", "link", "set", "uplink0", "up"),
		in(ch.r, "ip", "route", "add", "default", "via", "192.0.2.1"),
		in(ch.r, "ip", "-6", "route", "add", "2001:db8:ffff::/48", "via", "2001:db8:0:1::1"),
		in(ch.r, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"),
		in(ch.s, "ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"),
		in(ch.s, "ip", "addr", "add", "2001:db8:0:1::1/64", "dev", "eth0", "nodad"),
		in(ch.s, "ip", "addr", "add", "198.51.100.80/32", "dev", "lo"),
		in(ch.s, "ip", "addr", "add", "2001:db8:ffff::6/128", "dev", "lo"),
		in(ch.s, "ip", "link", "set", "eth0", "up"),
		in(ch.s, "ip", "-6", "route", "add", "2001:db8:1000::/64", "via", "2001:db8:0:1::2"),
	}
	steps = append(steps, ch.addHosts(true, func(dev, metric string) [][]string {
		return [][]string{
			in(ch.c, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1", "dev", dev, "metric", metric),
			in(ch.c, "ip", "route", "add", "default", "via", "203.0.113.129", "dev", dev, "metric", metric),
		}
	})...)
	if err := ch.run(steps); err != nil {
		return nil, err
	}
	return ch, nil
}

// addHosts fills ch.hosts and returns the steps that make them in the
// client namespace, with IPv4 addresses if v4, and routes(dev, metric) for
// each. The routes' metrics put them behind eth0's (1024 and 0), so that
// unbound sockets (iperf3) keep leaving through eth0; a socket bound to a
// host's device routes through that device.
func (ch *chain) addHosts(v4 bool, routes func(dev, metric string) [][]string) [][]string {
	var steps [][]string
	for i := range lanHosts {
		h := lanHost{
			dev: fmt.Sprintf("mv%d", i),
			v6:  netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, byte(i)}),
			v4:  netip.AddrFrom4([4]byte{203, 0, 113, byte(140 + i)}),
		}
		ch.hosts = append(ch.hosts, h)
		steps = append(steps,
			in(ch.c, "ip", "link", "add", "link", "eth0", "name", h.dev, "type", "macvlan", "mode", "bridge"),
			in(ch.c, "ip", "addr", "add", h.v6.String()+"/64", "dev", h.dev, "nodad"),
		)
		if v4 {
			steps = append(steps, in(ch.c, "ip", "addr", "add", h.v4.String()+"/25", "dev", h.dev))
		}
		steps = append(steps, in(ch.c, "ip", "link", "set", h.dev, "up"))
		steps = append(steps, routes(h.dev, fmt.Sprint(2000+i))...)
	}
	return steps
}

// run runs steps in order, and closes ch at the first that fails.
func (ch *chain) run(steps [][]string) error {
	for _, s := range steps {
		if err := sh(s...); err != nil {
			ch.close()
			return err
		}
	}
	return nil
}

func (ch *chain) close() {
	for _, ns := range []string{ch.c, ch.r, ch.s} {
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, p := range strings.Fields(string(out)) {
				// This process has threads in the namespaces too.
				if p != fmt.Sprint(os.Getpid()) {
					exec.Command("kill", "-9", p).Run()
				}
			}
		}
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// inNS runs f on a thread in namespace ns (sockets made there stay there).
func inNS(ns string, f func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		h, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		if err != nil {
			errc <- err
			return
		}
		f()
		errc <- nil
	}()
	return <-errc
}
