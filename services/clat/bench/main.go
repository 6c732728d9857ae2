// Command bench measures the CLAT's TCP throughput against plain IPv6
// forwarding in one run, on one machine:
//
//	clat   an IPv4 client behind the gizmo's CLAT (services/clat: NAT44 to
//	       192.0.0.4, the eBPF translation on clat0 and the uplink) to an
//	       IPv6 server at PREF64 + 198.51.100.80, as the ISP's NAT64 would
//	       present it (the NAT64 itself is not measured)
//	ipv6   an IPv6 client to an IPv6 server, plain forwarding: the ceiling
//	nat44  an IPv4 client through kernel NAT44 (conntrack masquerade) to an
//	       IPv4 server: the path legacy hosts take on a line with IPv4
//
// Each mode has its own client ── router ── server chain of network
// namespaces (gzt-clatbench-*) for the whole run. Every round measures
// all modes back to back (iperf3, one TCP stream), in an order rotated
// each round, so that the ratios are taken within a round. Markdown goes
// to stdout. Run as root:
//
//	go run ./services/clat/bench -runs 5 -t 3
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/internal/benchns"
	"codeberg.org/monostack/gizmo/internal/iperf"
	"codeberg.org/monostack/gizmo/services/clat"
)

var (
	runs     = flag.Int("runs", 5, "rounds")
	seconds  = flag.Int("t", 3, "seconds per measurement")
	modesArg = flag.String("modes", "clat,ipv6,nat44", "modes to measure")
)

var (
	pref64 = netip.MustParsePrefix("2001:db8:46::/96")
	// The CLAT's dedicated /64 (the last of a /56) and its address.
	clatNet  = netip.MustParsePrefix("2001:db8:1000:ff::/64")
	clatAddr = netip.MustParseAddr("2001:db8:1000:ff::464")
	// server4 is the IPv4 server; through the CLAT the client reaches it
	// at its PREF64 form, server6 the IPv6 one.
	server4 = netip.MustParseAddr("198.51.100.80")
	server6 = netip.MustParseAddr("2001:db8:ffff::6")
)

func embed(a netip.Addr) netip.Addr {
	b := pref64.Addr().As16()
	copy(b[12:], a.AsSlice())
	return netip.AddrFrom16(b)
}

// newChain builds client ── router ── server with the lab's addresses in
// miniature: a legacy /24 and a LAN /64 on the client side, the WAN /64 on
// the server side, and on the server the three targets on lo.
func newChain(withIPv4WAN bool) (benchns.Chain, error) {
	ch := benchns.NewChain("gzt-clatbench")
	steps := append(ch.Routed(),
		benchns.In(ch.Client, "ip", "addr", "add", "192.168.64.2/24", "dev", "eth0"),
		benchns.In(ch.Client, "ip", "addr", "add", "2001:db8:1000::a/64", "dev", "eth0", "nodad"),
		benchns.In(ch.Client, "ip", "link", "set", "eth0", "up"),
		benchns.In(ch.Client, "ip", "route", "add", "default", "via", "192.168.64.1"),
		benchns.In(ch.Client, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1"),
		benchns.In(ch.Router, "ip", "addr", "add", "192.168.64.1/24", "dev", "lan0"),
		benchns.In(ch.Router, "ip", "addr", "add", "2001:db8:1000::1/64", "dev", "lan0", "nodad"),
		benchns.In(ch.Router, "ip", "addr", "add", "2001:db8:0:1::2/64", "dev", "uplink0", "nodad"),
		benchns.In(ch.Router, "ip", "link", "set", "lan0", "up"), benchns.In(ch.Router, "ip", "link", "set", "uplink0", "up"),
		benchns.In(ch.Router, "ip", "-6", "route", "add", "default", "via", "2001:db8:0:1::1"),
		benchns.In(ch.Router, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"),
		benchns.In(ch.Server, "ip", "addr", "add", "2001:db8:0:1::1/64", "dev", "eth0", "nodad"),
		benchns.In(ch.Server, "ip", "addr", "add", server6.String()+"/128", "dev", "lo"),
		benchns.In(ch.Server, "ip", "addr", "add", embed(server4).String()+"/128", "dev", "lo"),
		benchns.In(ch.Server, "ip", "link", "set", "eth0", "up"),
		benchns.In(ch.Server, "ip", "-6", "route", "add", "2001:db8:1000::/64", "via", "2001:db8:0:1::2"),
		benchns.In(ch.Server, "ip", "-6", "route", "add", clatNet.String(), "via", "2001:db8:0:1::2"),
	)
	if withIPv4WAN {
		steps = append(steps,
			benchns.In(ch.Router, "ip", "addr", "add", "192.0.2.100/24", "dev", "uplink0"),
			benchns.In(ch.Router, "ip", "route", "add", "default", "via", "192.0.2.1"),
			benchns.In(ch.Server, "ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"),
			benchns.In(ch.Server, "ip", "addr", "add", server4.String()+"/32", "dev", "lo"),
		)
	}
	if err := ch.Run(steps); err != nil {
		return benchns.Chain{}, err
	}
	return ch, nil
}

// mode is one way from the client to the server.
type mode struct {
	name   string
	target string // what the client connects to
	ipv4   bool   // the chain's WAN carries IPv4
	setup  func(ch benchns.Chain) (func(), error)
}

// clatMode runs the CLAT service in the router as the daemon would, with
// the plan the daemon makes for an IPv6-only line with the ISP's NAT64.
func clatMode(ch benchns.Chain) (func(), error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := clat.New(clat.Config{WAN: "uplink0", Logger: log})
	if err != nil {
		return nil, err
	}
	out, err := benchns.Output(ch.Router, "cat", "/sys/class/net/uplink0/ifindex")
	if err != nil {
		return nil, err
	}
	var wan int
	fmt.Sscan(string(out), &wan)
	ctx, cancel := context.WithCancel(context.Background())
	done := benchns.Go(ch.Router, func() error { return svc.Run(ctx) })
	svc.Update(clat.Plan{Pref64: pref64, Address: clatAddr, WANIfindex: wan, WANMTU: 1500})
	for i := 0; !svc.Stats().Running; i++ {
		if i > 500 {
			cancel()
			return nil, fmt.Errorf("the CLAT did not start: %v", <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() {
		slog.Info("clat counters", "counters", svc.Stats().Counters)
		cancel()
		<-done
	}, nil
}

func nat44Mode(ch benchns.Chain) (func(), error) { return func() {}, ch.Masquerade() }

var allModes = []mode{
	{"clat", server4.String(), false, clatMode},
	{"ipv6", server6.String(), false, func(benchns.Chain) (func(), error) { return func() {}, nil }},
	{"nat44", server4.String(), true, nat44Mode},
}

// throughput runs one iperf3 TCP stream from the client and returns the
// receiver's rate in Gbit/s.
func throughput(ch benchns.Chain, target string) (float64, error) {
	out, err := benchns.Output(ch.Client, "iperf3", "-J", "-c", target, "-t", fmt.Sprint(*seconds))
	if err != nil {
		return 0, fmt.Errorf("iperf3 to %s: %v: %s", target, err, out)
	}
	r, err := iperf.Parse(out)
	if err != nil {
		return 0, err
	}
	return r.Gbps(), nil
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (network namespaces)")
		os.Exit(1)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run sets every mode up, measures, prints, and takes everything down
// again, also after an error.
func run() error {
	var modes []mode
	for _, m := range allModes {
		if slices.Contains(strings.Split(*modesArg, ","), m.name) {
			modes = append(modes, m)
		}
	}
	chains := map[string]benchns.Chain{}
	defer func() {
		for _, ch := range chains {
			ch.Close()
		}
	}()
	for _, m := range modes {
		ch, err := newChain(m.ipv4)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		chains[m.name] = ch
		stop, err := m.setup(ch)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		defer stop()
		if err := benchns.Sh(benchns.In(ch.Server, "iperf3", "-s", "-D")...); err != nil {
			return err
		}
		// Warm up: neighbour discovery, conntrack, the iperf3 server.
		time.Sleep(200 * time.Millisecond)
		exec.Command("ip", benchns.In(ch.Client, "ping", "-c", "2", "-i", "0.2", "-W", "2", m.target)[1:]...).Run()
	}
	start, load0 := time.Now().UTC(), loadavg()
	res := map[string][]float64{}
	ratio := map[string][]float64{}
	for round := range *runs {
		order := slices.Clone(modes)
		k := round % len(order)
		order = append(order[k:], order[:k]...)
		got := map[string]float64{}
		for _, m := range order {
			v, err := throughput(chains[m.name], m.target)
			if err != nil {
				return err
			}
			got[m.name] = v
			res[m.name] = append(res[m.name], v)
		}
		for _, m := range modes {
			if m.name != "ipv6" && got["ipv6"] > 0 {
				ratio[m.name] = append(ratio[m.name], got[m.name]/got["ipv6"])
			}
		}
	}
	fmt.Printf("%s–%s UTC, load %s → %s, %d rounds of %d s, TCP one stream (iperf3)\n\n",
		start.Format("15:04"), time.Now().UTC().Format("15:04"), load0, loadavg(), *runs, *seconds)
	fmt.Println("| mode | Gbit/s min / median / max | same-round ratio to ipv6 (min / median / max) |")
	fmt.Println("|---|---|---|")
	for _, m := range modes {
		xs := res[m.name]
		row := fmt.Sprintf("| %s | %.2f / %.2f / %.2f |", m.name, slices.Min(xs), median(xs), slices.Max(xs))
		if r := ratio[m.name]; len(r) > 0 {
			row += fmt.Sprintf(" %.2f / **%.2f** / %.2f |", slices.Min(r), median(r), slices.Max(r))
		} else {
			row += " — |"
		}
		fmt.Println(row)
	}
	return nil
}
