package dslite

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/iperf"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// BenchmarkSoftwireTCP measures TCP throughput (iperf3, as the NAT64's
// bench does) through the B4 against plain IPv6 forwarding, in the same
// run, each mode with its own client ── router ── server chain of
// namespaces:
//
//	ipv6    client ── router (IPv6 forwarding) ── server
//	dslite  legacy IPv4 client ── gizmo (NAT44 to 192.0.0.2, B4 on its
//	        uplink0) ── AFTR (the B4's programs with the addresses
//	        swapped, as in the netns test) with the server behind it
//
// The modes alternate within each of b.N rounds, so that drift in the
// machine's load falls on both alike; the ratio is taken per round and the
// median reported. Run as root:
//
//	go test -run '^$' -bench SoftwireTCP -benchtime 5x ./services/dslite
func BenchmarkSoftwireTCP(b *testing.B) {
	testns.NeedRoot(b)
	v6 := newIPv6Chain(b)
	l := newSoftwireChain(b)
	var ratios, g6, g4 []float64
	for b.Loop() {
		a, err := iperfTCP(v6.client, "2001:db8:ffff::10")
		if err != nil {
			b.Fatal(err)
		}
		d, err := iperfTCP(l.client, labServer.String())
		if err != nil {
			b.Fatal(err)
		}
		g6, g4, ratios = append(g6, a), append(g4, d), append(ratios, d/a)
	}
	b.ReportMetric(median(g6), "ipv6-Gbit/s")
	b.ReportMetric(median(g4), "dslite-Gbit/s")
	b.ReportMetric(median(ratios), "dslite/ipv6")
	c := l.svc.Stats().Counters
	if c["too_big"] != 0 || c["error"] != 0 || c["no_route"] != 0 {
		b.Errorf("the softwire dropped packets: %v", c)
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}

type chain struct{ client, router, server string }

// newIPv6Chain is plain IPv6 forwarding, the ceiling.
func newIPv6Chain(b *testing.B) chain {
	ch := chain{testns.New(b, "c6"), testns.New(b, "r6"), testns.New(b, "s6")}
	testns.Veth(b, ch.client, "eth0", ch.router, "lan0")
	testns.Veth(b, ch.router, "uplink0", ch.server, "isp0")
	for _, ns := range []string{ch.client, ch.router, ch.server} {
		testns.Sysctl(b, ns, "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	for _, c := range [][]string{
		{"-n", ch.client, "link", "set", "eth0", "up"},
		{"-n", ch.client, "addr", "add", "2001:db8:1000::2/64", "dev", "eth0", "nodad"},
		{"-n", ch.client, "route", "add", "default", "via", "2001:db8:1000::1"},
		{"-n", ch.router, "link", "set", "lan0", "up"},
		{"-n", ch.router, "link", "set", "uplink0", "up"},
		{"-n", ch.router, "addr", "add", "2001:db8:1000::1/64", "dev", "lan0", "nodad"},
		{"-n", ch.router, "addr", "add", labB4.String() + "/64", "dev", "uplink0", "nodad"},
		{"-n", ch.router, "route", "add", "default", "via", "2001:db8:0:1::1"},
		{"-n", ch.server, "link", "set", "isp0", "up"},
		{"-n", ch.server, "addr", "add", "2001:db8:0:1::1/64", "dev", "isp0", "nodad"},
		{"-n", ch.server, "addr", "add", "2001:db8:ffff::10/128", "dev", "lo"},
		{"-n", ch.server, "route", "add", "2001:db8:1000::/64", "via", labB4.String()},
	} {
		testns.IP(b, c...)
	}
	serve(b, ch.server, "2001:db8:ffff::10")
	return ch
}

// softwireChain is a legacy host behind the gizmo's NAT44 and B4.
type softwireChain struct {
	chain
	svc *Service
}

func newSoftwireChain(b *testing.B) softwireChain {
	l := newSoftwireLab(b, 1500)
	ch := softwireChain{chain: chain{client: testns.New(b, "c4"), router: l.gizmo, server: l.peer}, svc: l.svc}
	testns.Veth(b, ch.client, "eth0", ch.router, "lan0")
	for _, c := range [][]string{
		{"-n", ch.client, "link", "set", "eth0", "up"},
		{"-n", ch.client, "addr", "add", "203.0.113.130/25", "dev", "eth0"},
		{"-n", ch.client, "route", "add", "default", "via", "203.0.113.129"},
		{"-n", ch.router, "link", "set", "lan0", "up"},
		{"-n", ch.router, "addr", "add", "203.0.113.129/25", "dev", "lan0"},
	} {
		testns.IP(b, c...)
	}
	// The legacy hosts' NAT44 to the softwire's address, as the gizmo's
	// firewall does it (plan.Firewall: WANIPv4 192.0.0.2).
	for _, rule := range []string{
		"add table ip bench",
		"add chain ip bench post { type nat hook postrouting priority 100 ; }",
		"add rule ip bench post oifname uplink0 ip saddr 203.0.113.128/25 snat to 192.0.0.2",
	} {
		testns.Exec(b, ch.router, append([]string{"nft"}, strings.Fields(rule)...)...)
	}
	serve(b, ch.server, labServer.String())
	return ch
}

// serve runs an iperf3 server on addr in ns until the benchmark ends.
func serve(b *testing.B, ns, addr string) {
	testns.StartCommand(b, testns.Command(ns, "iperf3", "-s", "-B", addr))
}

// iperfTCP is one TCP run of 3 s from the client namespace, in Gbit/s.
// The server may not listen yet on a busy machine: the run is tried again.
func iperfTCP(client, dst string) (float64, error) {
	r, err := iperf.Retry(20, 300*time.Millisecond, func() ([]byte, error) {
		return testns.Command(client, "iperf3", "-c", dst, "-t", "3", "-J").Output()
	})
	if err != nil {
		return 0, fmt.Errorf("iperf3 to %s: %w", dst, err)
	}
	return r.Gbps(), nil
}
