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
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netns"

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

type chain struct{ c, r, s string }

func in(ns string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func embed(a netip.Addr) netip.Addr {
	b := pref64.Addr().As16()
	copy(b[12:], a.AsSlice())
	return netip.AddrFrom16(b)
}

// newChain builds client ── router ── server with the lab's addresses in
// miniature: a legacy /24 and a LAN /64 on the client side, the WAN /64 on
// the server side, and on the server the three targets on lo.
func newChain(withIPv4WAN bool) (*chain, error) {
	id := fmt.Sprintf("gzt-clatbench-%04x", rand.IntN(0x10000))
	ch := &chain{c: id + "-c", r: id + "-r", s: id + "-s"}
	steps := [][]string{
		{"ip", "netns", "add", ch.c}, {"ip", "netns", "add", ch.r}, {"ip", "netns", "add", ch.s},
		{"ip", "link", "add", "lan0", "netns", ch.r, "type", "veth", "peer", "name", "eth0", "netns", ch.c},
		{"ip", "link", "add", "uplink0", "netns", ch.r, "type", "veth", "peer", "name", "eth0", "netns", ch.s},
		in(ch.c, "ip", "link", "set", "lo", "up"), in(ch.r, "ip", "link", "set", "lo", "up"), in(ch.s, "ip", "link", "set", "lo", "up"),
		in(ch.c, "ip", "addr", "add", "192.168.64.2/24", "dev", "eth0"),
		in(ch.c, "ip", "addr", "add", "2001:db8:1000::a/64", "dev", "eth0", "nodad"),
		in(ch.c, "ip", "link", "set", "eth0", "up"),
		in(ch.c, "ip", "route", "add", "default", "via", "192.168.64.1"),
		in(ch.c, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1"),
		in(ch.r, "ip", "addr", "add", "192.168.64.1/24", "dev", "lan0"),
		in(ch.r, "ip", "addr", "add", "2001:db8:1000::1/64", "dev", "lan0", "nodad"),
		in(ch.r, "ip", "addr", "add", "2001:db8:0:1::2/64", "dev", "uplink0", "nodad"),
		in(ch.r, "ip", "link", "set", "lan0", "up"), in(ch.r, "ip", "link", "set", "uplink0", "up"),
		in(ch.r, "ip", "-6", "route", "add", "default", "via", "2001:db8:0:1::1"),
		in(ch.r, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"),
		in(ch.s, "ip", "addr", "add", "2001:db8:0:1::1/64", "dev", "eth0", "nodad"),
		in(ch.s, "ip", "addr", "add", server6.String()+"/128", "dev", "lo"),
		in(ch.s, "ip", "addr", "add", embed(server4).String()+"/128", "dev", "lo"),
		in(ch.s, "ip", "link", "set", "eth0", "up"),
		in(ch.s, "ip", "-6", "route", "add", "2001:db8:1000::/64", "via", "2001:db8:0:1::2"),
		in(ch.s, "ip", "-6", "route", "add", clatNet.String(), "via", "2001:db8:0:1::2"),
	}
	if withIPv4WAN {
		steps = append(steps,
			in(ch.r, "ip", "addr", "add", "192.0.2.100/24", "dev", "uplink0"),
			in(ch.r, "ip", "route", "add", "default", "via", "192.0.2.1"),
			in(ch.s, "ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"),
			in(ch.s, "ip", "addr", "add", server4.String()+"/32", "dev", "lo"),
		)
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			ch.close()
			return nil, err
		}
	}
	return ch, nil
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

// mode is one way from the client to the server.
type mode struct {
	name   string
	target string // what the client connects to
	ipv4   bool   // the chain's WAN carries IPv4
	setup  func(ch *chain) (func(), error)
}

// clatMode runs the CLAT service in the router as the daemon would, with
// the plan the daemon makes for an IPv6-only line with the ISP's NAT64.
func clatMode(ch *chain) (func(), error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := clat.New(clat.Config{WAN: "uplink0", Logger: log})
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("ip", in(ch.r, "cat", "/sys/class/net/uplink0/ifindex")[1:]...).Output()
	if err != nil {
		return nil, err
	}
	var wan int
	fmt.Sscan(string(out), &wan)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		h, err := netns.GetFromName(ch.r)
		if err == nil {
			err = netns.Set(h)
		}
		if err != nil {
			done <- err
			return
		}
		done <- svc.Run(ctx)
	}()
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

func nat44Mode(ch *chain) (func(), error) {
	f := filepath.Join(os.TempDir(), ch.r+".nft")
	rules := "table ip benchnat {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"uplink0\" masquerade\n\t}\n}\n"
	if err := os.WriteFile(f, []byte(rules), 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(f)
	return func() {}, sh(in(ch.r, "nft", "-f", f)...)
}

var allModes = []mode{
	{"clat", server4.String(), false, clatMode},
	{"ipv6", server6.String(), false, func(*chain) (func(), error) { return func() {}, nil }},
	{"nat44", server4.String(), true, nat44Mode},
}

// throughput runs one iperf3 TCP stream from the client and returns the
// receiver's rate in Gbit/s.
func throughput(ch *chain, target string) (float64, error) {
	out, err := exec.Command("ip", in(ch.c, "iperf3", "-J", "-c", target, "-t", fmt.Sprint(*seconds))[1:]...).Output()
	if err != nil {
		return 0, fmt.Errorf("iperf3 to %s: %v: %s", target, err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, err
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
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
	chains := map[string]*chain{}
	defer func() {
		for _, ch := range chains {
			ch.close()
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
		if err := sh(in(ch.s, "iperf3", "-s", "-D")...); err != nil {
			return err
		}
		// Warm up: neighbour discovery, conntrack, the iperf3 server.
		time.Sleep(200 * time.Millisecond)
		exec.Command("ip", in(ch.c, "ping", "-c", "2", "-i", "0.2", "-W", "2", m.target)[1:]...).Run()
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
