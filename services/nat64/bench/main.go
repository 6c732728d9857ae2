// Command bench compares the gizmo's eBPF NAT64 with the classic Linux
// ways of doing the same job, side by side in one run, on one machine:
//
//	gizmo   the eBPF NAT64 (services/nat64)
//	tayga   tayga (user-space NAT64 on a tun) + nftables masquerade
//	nat44   kernel IPv4 NAT44 (conntrack masquerade), IPv4 client
//	ipv6    plain IPv6 forwarding, the ceiling
//
// Each mode gets its own client ── router ── server chain of network
// namespaces (gzt-bench-*) for the whole run and is measured for TCP
// throughput (iperf3), 64-byte UDP packets per second (iperf3) and new TCP
// connections per second (a Go dialer with SO_LINGER 0). The modes are
// interleaved: each round measures every metric for all modes back to back,
// so that drift in the machine's load falls on all of them alike, and the
// ratios are taken within a round. The table goes to stdout in Markdown.
// Run as root:
//
//	go run ./services/nat64/bench -runs 5 -t 3
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"codeberg.org/monostack/gizmo/services/nat64"
)

var (
	runs     = flag.Int("runs", 5, "runs per measurement")
	seconds  = flag.Int("t", 3, "seconds per run")
	modesArg = flag.String("modes", "gizmo,tayga,nat44,ipv6", "modes to measure")
	quota    = flag.Int("quota", 0, "gizmo: sessions per address and per /64 (0: the shipped defaults, nat64.DefaultMaxSessionsPerHost and DefaultMaxSessionsPer64); the connection rate's closed sessions stay 4 minutes (TCP_TRANS), so one client address meets the shipped share within seconds")
	bpfStats = flag.Bool("bpfstats", false, "also report the NAT64 programs' run time per packet (sets kernel.bpf_stats_enabled during the run, which adds a little to every BPF program)")
)

var pref64 = netip.MustParsePrefix("2001:db8:64::/96")

type chain struct{ c, r, s string }

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

// mode sets up one way of reaching the server and says which address the
// client uses; the returned function tears it down.
type mode struct {
	name   string
	target string // what the client connects to
	server string // the server's own address (iperf3 binds it, so that UDP replies come from it)
	setup  func(ch *chain) (func(), error)
}

func gizmoMode(ch *chain) (func(), error) {
	svc, err := nat64.New(nat64.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	idx := func(dev string) int {
		out, _ := exec.Command("ip", in(ch.r, "cat", "/sys/class/net/"+dev+"/ifindex")[1:]...).Output()
		var n int
		fmt.Sscan(string(out), &n)
		return n
	}
	lan, wan := idx("lan0"), idx("uplink0")
	go func() {
		runtime.LockOSThread()
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
	svc.Update(nat64.Plan{
		Pool4: netip.MustParseAddr("192.0.2.100"), Pref64: pref64,
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000::/64")},
		Router6:     netip.MustParseAddr("2001:db8:1000::1"),
		LANIfindex:  lan, WANIfindex: wan, LANMTU: 1500, WANMTU: 1500,
		MaxSessionsPerHost: *quota, MaxSessionsPer64: *quota,
	})
	for i := 0; !svc.Stats().Enabled; i++ {
		if i > 500 {
			cancel()
			return nil, fmt.Errorf("nat64 did not start: %v", <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() {
		st := svc.Stats()
		slog.Info("gizmo counters", "counters", st.Counters)
		cancel()
		<-done
	}, nil
}

const masq = `table ip benchnat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "uplink0" masquerade
	}
}
`

func nftMasq(ch *chain) error {
	f := filepath.Join(os.TempDir(), ch.r+".nft")
	if err := os.WriteFile(f, []byte(masq), 0o600); err != nil {
		return err
	}
	defer os.Remove(f)
	return sh(in(ch.r, "nft", "-f", f)...)
}

func nat44Mode(ch *chain) (func(), error) { return func() {}, nftMasq(ch) }

func taygaMode(ch *chain) (func(), error) {
	dir, err := os.MkdirTemp("", ch.r+"-tayga")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "tayga.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf("tun-device nat64\nipv4-addr 192.168.255.1\nprefix %s\ndynamic-pool 192.168.255.0/24\ndata-dir %s\n", pref64, dir)), 0o600)
	if err != nil {
		return nil, err
	}
	for _, s := range [][]string{
		in(ch.r, "tayga", "-c", conf, "--mktun"),
		in(ch.r, "ip", "link", "set", "nat64", "up"),
		in(ch.r, "ip", "route", "add", "192.168.255.0/24", "dev", "nat64"),
		in(ch.r, "ip", "-6", "route", "add", pref64.String(), "dev", "nat64"),
	} {
		if err := sh(s...); err != nil {
			return nil, err
		}
	}
	if err := nftMasq(ch); err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", in(ch.r, "tayga", "-c", conf, "-n")[1:]...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }, nil
}

func target(v4 string) string {
	a := pref64.Addr().As16()
	b := netip.MustParseAddr(v4).As4()
	copy(a[12:], b[:])
	return netip.AddrFrom16(a).String()
}

var modes = []mode{
	{"gizmo", target("198.51.100.80"), "198.51.100.80", gizmoMode},
	{"tayga", target("198.51.100.80"), "198.51.100.80", taygaMode},
	{"nat44", "198.51.100.80", "198.51.100.80", nat44Mode},
	{"ipv6", "2001:db8:ffff::6", "2001:db8:ffff::6", func(*chain) (func(), error) { return func() {}, nil }},
}

// results: metric → mode → round → value (rounds with an error are
// missing).
type results map[string]map[string]map[int]float64

func (r results) add(metric, mode string, round int, v float64) {
	if r[metric] == nil {
		r[metric] = map[string]map[int]float64{}
	}
	if r[metric][mode] == nil {
		r[metric][mode] = map[int]float64{}
	}
	r[metric][mode][round] = v
}

func (r results) values(metric, mode string) []float64 {
	var v []float64
	for _, x := range r[metric][mode] {
		v = append(v, x)
	}
	return v
}

// paired is gizmo's value over the reference's in each round that has
// both: the two were measured minutes apart at most, on the same machine
// state.
func (r results) paired(metric, ref string) []float64 {
	var v []float64
	for round, g := range r[metric]["gizmo"] {
		if x, ok := r[metric][ref][round]; ok && x > 0 {
			v = append(v, g/x)
		}
	}
	return v
}

func iperf(ch *chain, m mode, udp bool) (float64, error) {
	dst := m.target
	srv := exec.Command("ip", in(ch.s, "iperf3", "-s", "-1", "-B", m.server)[1:]...)
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	args := []string{"iperf3", "-c", dst, "-t", fmt.Sprint(*seconds), "-J"}
	if udp {
		args = append(args, "-u", "-l", "64", "-b", "0")
	}
	var out []byte
	var err error
	// The server may not listen yet on a busy machine: try a few times.
	for range 40 {
		out, err = exec.Command("ip", in(ch.c, args...)[1:]...).Output()
		// iperf3 -J may exit 0 with the refusal in its JSON.
		if !strings.Contains(string(out), "Connection refused") {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		return 0, fmt.Errorf("iperf3 to %s: %v: %s", dst, err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BPS float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			Sum struct {
				Packets     float64 `json:"packets"`
				LostPackets float64 `json:"lost_packets"`
				Seconds     float64 `json:"seconds"`
			} `json:"sum"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, err
	}
	if udp {
		if res.End.Sum.Seconds == 0 {
			return 0, fmt.Errorf("no UDP result: %s", out)
		}
		return (res.End.Sum.Packets - res.End.Sum.LostPackets) / res.End.Sum.Seconds, nil
	}
	return res.End.SumReceived.BPS / 1e9, nil
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

// connRate counts completed TCP handshakes per second from 8 parallel
// dialers; SO_LINGER 0 closes with RST so that no TIME_WAIT piles up.
func connRate(ch *chain, dst string) (float64, error) {
	var ln net.Listener
	if err := inNS(ch.s, func() {
		var err error
		ln, err = net.Listen("tcp", ":9000")
		if err != nil {
			slog.Error("listen", "err", err)
		}
	}); err != nil || ln == nil {
		return 0, fmt.Errorf("listen in %s: %v", ch.s, err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	var n atomic.Int64
	deadline := time.Now().Add(time.Duration(*seconds) * time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go inNS(ch.c, func() {
			defer wg.Done()
			d := net.Dialer{Timeout: time.Second}
			for time.Now().Before(deadline) {
				c, err := d.Dial("tcp", net.JoinHostPort(dst, "9000"))
				if err != nil {
					continue
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / float64(*seconds), nil
}

// metrics are measured in this order in every round.
var metrics = []struct {
	name string
	f    func(ch *chain, m mode) (float64, error)
}{
	{"TCP throughput (Gbit/s)", func(ch *chain, m mode) (float64, error) { return iperf(ch, m, false) }},
	{"64-byte UDP (packets/s)", func(ch *chain, m mode) (float64, error) { return iperf(ch, m, true) }},
	{"new TCP connections/s", func(ch *chain, m mode) (float64, error) { return connRate(ch, m.target) }},
}

// setUp is one mode's chain, ready to measure.
type setUp struct {
	mode
	ch       *chain
	teardown func()
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		must(fmt.Errorf("needs root (network namespaces, BPF)"))
	}
	want := strings.Split(*modesArg, ",")
	// Every mode keeps its own chain for the whole run, so that the rounds
	// can interleave them: a machine that gets busier or quieter during
	// the run (other jobs, thermal limits) then weighs on every mode alike
	// instead of on whichever ran last.
	var ups []setUp
	defer func() {
		for _, u := range ups {
			u.teardown()
			u.ch.close()
		}
	}()
	for _, m := range modes {
		if !slices.Contains(want, m.name) {
			continue
		}
		ch, err := newChain()
		if err == nil {
			var teardown func()
			teardown, err = m.setup(ch)
			if err == nil {
				ups = append(ups, setUp{m, ch, teardown})
			} else {
				ch.close()
			}
		}
		if err != nil {
			slog.Error("set-up", "mode", m.name, "err", err)
			return
		}
		// Warm up: neighbour discovery, tayga's dynamic mapping.
		exec.Command("ip", in(ch.c, "ping", "-c", "3", "-i", "0.2", "-w", "10", m.target)[1:]...).Run()
	}
	var progs *progStats
	if *bpfStats {
		var err error
		if progs, err = startProgStats(); err != nil {
			slog.Error("bpf stats", "err", err)
			return
		}
		defer progs.close()
	}
	res := results{}
	for round := range *runs {
		for _, x := range metrics {
			// Back to back, in an order that rotates every round, so
			// that no mode always follows the same one.
			for k := range ups {
				u := ups[(k+round)%len(ups)]
				f := func() (float64, error) { return x.f(u.ch, u.mode) }
				var v float64
				var err error
				if progs != nil && u.name == "gizmo" {
					v, err = progs.measure(x.name, f)
				} else {
					v, err = f()
				}
				if err != nil {
					slog.Error("measurement", "mode", u.name, "round", round, "metric", x.name, "err", err)
					continue
				}
				res.add(x.name, u.name, round, v)
				slog.Info("measured", "mode", u.name, "round", round, "metric", x.name, "value", v)
			}
		}
	}
	report(res, want)
	if progs != nil {
		progs.report()
	}
}

func stats(v []float64) (lo, med, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

func report(res results, want []string) {
	fmt.Printf("Rounds: %d; in each, every metric is measured for every mode back to back (%d s each), in an order rotated per round. Values: min / median / max over the rounds.\n\n", *runs, *seconds)
	fmt.Printf("| metric | %s |\n|---|%s\n", strings.Join(want, " | "), strings.Repeat("---|", len(want)))
	for _, m := range metrics {
		row := []string{m.name}
		for _, mode := range want {
			lo, med, hi := stats(res.values(m.name, mode))
			row = append(row, fmt.Sprintf("%.3g / %.3g / %.3g", lo, med, hi))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
	refs := []string{"ipv6", "tayga", "nat44"}
	fmt.Println()
	fmt.Println("Ratios: gizmo over the reference, from the same round (min / median / max over the rounds), and of the medians above.")
	fmt.Println()
	fmt.Printf("| ratio | gizmo/ipv6 | gizmo/tayga | gizmo/nat44 |\n|---|---|---|---|\n")
	for _, m := range metrics {
		row := []string{m.name + ", same round"}
		for _, ref := range refs {
			p := res.paired(m.name, ref)
			if len(p) == 0 {
				row = append(row, "—")
				continue
			}
			lo, med, hi := stats(p)
			row = append(row, fmt.Sprintf("%.2f× / **%.2f×** / %.2f×", lo, med, hi))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
		row = []string{m.name + ", of medians"}
		_, g, _ := stats(res.values(m.name, "gizmo"))
		for _, ref := range refs {
			_, r, _ := stats(res.values(m.name, ref))
			if r == 0 {
				row = append(row, "—")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f×", g/r))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
}
