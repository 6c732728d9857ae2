package main

import (
	"fmt"
	"net/netip"
	"os"

	"codeberg.org/monostack/gizmo/internal/benchns"
)

// chain is one mode's client ── router ── server namespaces. The client
// namespace is a LAN: its own interface eth0 (the host that measures
// throughput and UDP) and lanHosts more hosts, each a macvlan of eth0 with
// its own MAC and addresses, among which the connection test spreads its
// connections the way a home's hosts share the router.
type chain struct {
	benchns.Chain
	hosts []lanHost
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

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func newChain() (*chain, error) {
	ch := &chain{Chain: benchns.NewChain("gzt-bench")}
	steps := append(ch.Routed(),
		// Each of the LAN's hosts answers ARP for its own address only.
		benchns.In(ch.Client, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"),
		benchns.In(ch.Client, "ip", "addr", "add", "2001:db8:1000::a/64", "dev", "eth0", "nodad"),
		benchns.In(ch.Client, "ip", "addr", "add", "203.0.113.130/25", "dev", "eth0"),
		benchns.In(ch.Client, "ip", "link", "set", "eth0", "up"),
		benchns.In(ch.Client, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1"),
		benchns.In(ch.Client, "ip", "route", "add", "default", "via", "203.0.113.129"),
		benchns.In(ch.Router, "ip", "addr", "add", "2001:db8:1000::1/64", "dev", "lan0", "nodad"),
		benchns.In(ch.Router, "ip", "addr", "add", "203.0.113.129/25", "dev", "lan0"),
		benchns.In(ch.Router, "ip", "addr", "add", "192.0.2.100/24", "dev", "uplink0"),
		benchns.In(ch.Router, "ip", "addr", "add", "2001:db8:0:1::2/64", "dev", "uplink0", "nodad"),
		benchns.In(ch.Router, "ip", "link", "set", "lan0", "up"), benchns.In(ch.Router, "ip", "link", "set", "uplink0", "up"),
		benchns.In(ch.Router, "ip", "route", "add", "default", "via", "192.0.2.1"),
		benchns.In(ch.Router, "ip", "-6", "route", "add", "2001:db8:ffff::/48", "via", "2001:db8:0:1::1"),
		benchns.In(ch.Router, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"),
		benchns.In(ch.Server, "ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"),
		benchns.In(ch.Server, "ip", "addr", "add", "2001:db8:0:1::1/64", "dev", "eth0", "nodad"),
		benchns.In(ch.Server, "ip", "addr", "add", "198.51.100.80/32", "dev", "lo"),
		benchns.In(ch.Server, "ip", "addr", "add", "2001:db8:ffff::6/128", "dev", "lo"),
		benchns.In(ch.Server, "ip", "link", "set", "eth0", "up"),
		benchns.In(ch.Server, "ip", "-6", "route", "add", "2001:db8:1000::/64", "via", "2001:db8:0:1::2"),
	)
	steps = append(steps, ch.addHosts(true, func(dev, metric string) [][]string {
		return [][]string{
			benchns.In(ch.Client, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1", "dev", dev, "metric", metric),
			benchns.In(ch.Client, "ip", "route", "add", "default", "via", "203.0.113.129", "dev", dev, "metric", metric),
		}
	})...)
	if err := ch.Run(steps); err != nil {
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
			benchns.In(ch.Client, "ip", "link", "add", "link", "eth0", "name", h.dev, "type", "macvlan", "mode", "bridge"),
			benchns.In(ch.Client, "ip", "addr", "add", h.v6.String()+"/64", "dev", h.dev, "nodad"),
		)
		if v4 {
			steps = append(steps, benchns.In(ch.Client, "ip", "addr", "add", h.v4.String()+"/25", "dev", h.dev))
		}
		steps = append(steps, benchns.In(ch.Client, "ip", "link", "set", h.dev, "up"))
		steps = append(steps, routes(h.dev, fmt.Sprint(2000+i))...)
	}
	return steps
}
