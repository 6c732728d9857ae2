package main

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"codeberg.org/monostack/gizmo/internal/benchns"
	"codeberg.org/monostack/gizmo/services/nat64"
)

// The one-armed segment is the existing-network deployment in miniature:
// the client (a LAN of hosts), the router (the gizmo, one port uplink0) and
// the server all hang off one switch, br0 in the server namespace, and
// the router sends what it forwards or translates back out of the port it
// came in on.
//
//	client eth0 ──┐
//	              ├── br0 (server namespace: the switch and the server)
//	router uplink0┘
//
// The client's /64 is 2001:db8:1000::/64; the router's address on it is
// 2001:db8:1000::2. The NAT64 prefix (pref64) is the first /96 of an
// on-link /64, 2001:db8:64::/64, as the gizmo announces it in that mode
// (PIO with L=1): the client resolves a synthesized address by Neighbor
// Solicitation and sends to whoever answers, the router. For the plain
// IPv6 reference the client routes the server's 2001:db8:ffff::/48 via
// the router.
func newOneArm() (*chain, error) {
	ch := &chain{Chain: benchns.NewChain("gzt-bench")}
	steps := append(ch.Namespaces(),
		benchns.In(ch.Server, "ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"),
		[]string{"ip", "link", "add", "eth0", "netns", ch.Client, "type", "veth", "peer", "name", "client", "netns", ch.Server},
		[]string{"ip", "link", "add", "uplink0", "netns", ch.Router, "type", "veth", "peer", "name", "gizmo", "netns", ch.Server},
		benchns.In(ch.Server, "ip", "link", "set", "client", "master", "br0", "up"),
		benchns.In(ch.Server, "ip", "link", "set", "gizmo", "master", "br0", "up"),
		benchns.In(ch.Client, "ip", "addr", "add", "2001:db8:1000::a/64", "dev", "eth0", "nodad"),
		benchns.In(ch.Client, "ip", "link", "set", "eth0", "up"),
		// RFC 4861 §6.3.4: an on-link PIO is a route to the link.
		benchns.In(ch.Client, "ip", "-6", "route", "add", "2001:db8:64::/64", "dev", "eth0"),
		benchns.In(ch.Client, "ip", "-6", "route", "add", "2001:db8:ffff::/48", "via", "2001:db8:1000::2"),
		benchns.In(ch.Router, "ip", "addr", "add", "2001:db8:1000::2/64", "dev", "uplink0", "nodad"),
		benchns.In(ch.Router, "ip", "link", "set", "uplink0", "up"),
		// services/wan turns forwarding on in every mode.
		benchns.In(ch.Router, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"),
		benchns.In(ch.Server, "ip", "addr", "add", "198.51.100.80/32", "dev", "lo"),
		benchns.In(ch.Server, "ip", "addr", "add", "2001:db8:ffff::6/128", "dev", "lo"),
		benchns.In(ch.Server, "ip", "link", "set", "br0", "up"),
	)
	steps = append(steps, ch.addHosts(false, func(dev, metric string) [][]string {
		return [][]string{
			benchns.In(ch.Client, "ip", "-6", "route", "add", "2001:db8:64::/64", "dev", dev, "metric", metric),
			benchns.In(ch.Client, "ip", "-6", "route", "add", "2001:db8:ffff::/48", "via", "2001:db8:1000::2", "dev", dev, "metric", metric),
		}
	})...)
	if err := ch.Run(steps); err != nil {
		return nil, err
	}
	return ch, nil
}

// gizmoOneArmMode runs the NAT64 as the daemon does in the existing-network
// mode (gizmo/plan.NAT64 with existingNetwork): the server namespace is the
// network's own router, which holds the /64 and the IPv4 subnet, gave the
// gizmo 192.0.2.100 (the pool address) and routes to the IPv4 internet;
// both programs on the one port's tcx ingress hook (LAN and WAN ifindex
// the same); the network's /64 and the management ULA /64 the allowed
// sources; the plan's limits at their shipped defaults. The daemon's
// services/nsresponder answers the clients' Neighbor Solicitations for
// the /96; here the kernel's proxy NDP answers for the one address the
// bench uses, with the same result (the router's MAC), since the bench
// measures the datapath, not neighbour discovery.
func gizmoOneArmMode(ch *chain) (*running, error) {
	dst := target("198.51.100.80")
	for _, s := range [][]string{
		benchns.In(ch.Server, "ip", "addr", "add", "2001:db8:1000::1/64", "dev", "br0", "nodad"),
		benchns.In(ch.Server, "ip", "addr", "add", "192.0.2.1/24", "dev", "br0"),
		benchns.In(ch.Router, "ip", "addr", "add", "fd00:db8:1::1/64", "dev", "uplink0", "nodad"),
		benchns.In(ch.Router, "ip", "addr", "add", "192.0.2.100/24", "dev", "uplink0"),
		benchns.In(ch.Router, "ip", "route", "add", "default", "via", "192.0.2.1"),
		benchns.In(ch.Router, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1"),
		// The kernel delays a proxied answer to a multicast NS by up
		// to proxy_delay (0.8 s); the NS responder answers at once.
		benchns.In(ch.Router, "sysctl", "-qw", "net.ipv6.conf.uplink0.proxy_ndp=1", "net.ipv6.neigh.uplink0.proxy_delay=0"),
		benchns.In(ch.Router, "ip", "-6", "neigh", "add", "proxy", dst, "dev", "uplink0"),
	} {
		if err := benchns.Sh(s...); err != nil {
			return nil, err
		}
	}
	port := ifindex(ch.Router, "uplink0")
	return startGizmo(ch, nat64.Plan{
		Pool4: netip.MustParseAddr("192.0.2.100"), Pref64: pref64,
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000::/64"), netip.MustParsePrefix("fd00:db8:1::/64")},
		Router6:     netip.MustParseAddr("fd00:db8:1::1"),
		// The prefix is not the well-known one: only the ranges that
		// are never translated (RFC 6146 §3: unicast only; loopback).
		Deny4: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("224.0.0.0/4"),
			netip.MustParsePrefix("255.255.255.255/32"),
		},
		LANIfindex: port, WANIfindex: port, LANMTU: 1500, WANMTU: 1500,
		PortsLow: nat64.DefaultPortsLow, PortsHigh: nat64.DefaultPortsHigh,
		MaxSessionsPerHost: 8192, // gizmo/plan.NAT64MaxSessionsPerHost
	})
}

// noRedirects drops the ICMPv6 Redirects the router would send. Linux has
// no IPv6 send_redirects sysctl: a router forwarding a packet out of the
// interface it came in on sends the source a Redirect (RFC 4861 §8.2, at
// most one a second per destination), and a client that follows it
// (accept_redirects) sends to the server directly, around the router.
const noRedirects = `table ip6 benchredirect {
	chain out {
		type filter hook output priority filter; policy accept;
		icmpv6 type nd-redirect counter drop
	}
}
`

// ipv6OneArmMode is the reference: plain IPv6 forwarding on the same
// segment, in and out of the router's one port, with the Redirects it
// would send dropped (noRedirects). The server's address on the segment
// is in another /64, 2001:db8:0:1::/64, which the router also holds, and
// the server routes the client's /64 via the router: both directions go
// through it, as both do through the NAT64 (a server that held the
// client's /64 on-link would answer the client directly).
func ipv6OneArmMode(ch *chain) (*running, error) {
	for _, s := range [][]string{
		benchns.In(ch.Server, "ip", "addr", "add", "2001:db8:0:1::1/64", "dev", "br0", "nodad"),
		benchns.In(ch.Server, "ip", "-6", "route", "add", "2001:db8:1000::/64", "via", "2001:db8:0:1::2"),
		benchns.In(ch.Router, "ip", "addr", "add", "2001:db8:0:1::2/64", "dev", "uplink0", "nodad"),
		benchns.In(ch.Router, "ip", "-6", "route", "add", "2001:db8:ffff::/48", "via", "2001:db8:0:1::1"),
	} {
		if err := benchns.Sh(s...); err != nil {
			return nil, err
		}
	}
	f := filepath.Join(os.TempDir(), ch.Router+"-redirect.nft")
	if err := os.WriteFile(f, []byte(noRedirects), 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(f)
	if err := benchns.Sh(benchns.In(ch.Router, "nft", "-f", f)...); err != nil {
		return nil, err
	}
	return &running{stop: func() {
		out, _ := benchns.Output(ch.Router, "nft", "list", "chain", "ip6", "benchredirect", "out")
		snmp, _ := benchns.Output(ch.Router, "grep", "-E", "Ip6OutForwDatagrams|Icmp6OutRedirects", "/proc/net/snmp6")
		slog.Info("ipv6-onearm: redirects dropped, and the router's counters", "chain", string(out), "snmp6", string(snmp))
	}}, nil
}
