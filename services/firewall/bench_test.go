package firewall

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/iperf"
	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/services/fastpath"
)

// iperfTCP runs one iperf3 TCP client in ns against dst and returns the
// received Gbit/s.
func iperfTCP(b *testing.B, ns, dst string, secs int) float64 {
	b.Helper()
	r, err := iperf.Result(testns.Command(ns, "iperf3", "-J", "-c", dst, "-t", fmt.Sprint(secs), "-O", "1").Output)
	if err != nil {
		b.Fatalf("iperf3 -c %s: %v", dst, err)
	}
	return r.Gbps()
}

// iperfUDP64 sends 64-byte UDP payloads as fast as iperf3 can from ns to
// dst and returns the packets/s that came out of the router: counted on the
// receiving host's interface, not by the receiving socket, which drops
// most of them and would measure itself.
func iperfUDP64(b *testing.B, ns, dst, rxNS string, secs int) float64 {
	b.Helper()
	before := rxPackets(b, rxNS)
	start := time.Now()
	out, err := testns.Command(ns, "iperf3", "-c", dst, "-t", fmt.Sprint(secs), "-u", "-b", "0", "-l", "64").CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("iperf3 -u -c %s: %v\n%s", dst, err, out)
	}
	return float64(rxPackets(b, rxNS)-before) / elapsed.Seconds()
}

func rxPackets(b *testing.B, ns string) uint64 {
	b.Helper()
	out, err := exec.Command("ip", "-n", ns, "-s", "-j", "link", "show", "dev", "eth0").Output()
	if err != nil {
		b.Fatalf("ip -s link: %v", err)
	}
	var links []struct {
		Stats64 struct {
			RX struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		b.Fatalf("ip -s -j link: %v %s", err, out)
	}
	return links[0].Stats64.RX.Packets
}

// BenchmarkForwarding measures what the ruleset adds to forwarding on
// newTopo's router: iperf3 TCP throughput and 64-byte UDP packets/s from
// the LAN host to the WAN host, interleaving the configurations in every
// round so that drifts of the machine hit them all alike.
//
//	sudo go test ./services/firewall -run '^$' -bench Forwarding -benchtime 1x -v
//
// FW_BENCH_ROUNDS and FW_BENCH_SECS change the rounds (5) and seconds per
// run (3). The results go to docs/performance.md.
func BenchmarkForwarding(b *testing.B) {
	testns.NeedRoot(b)
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.Skip("needs iperf3")
	}
	rounds, secs := envInt("FW_BENCH_ROUNDS", 5), envInt("FW_BENCH_SECS", 3)
	tp := newTopo(b)
	testns.StartCommand(b, testns.Command(tp.wan, "iperf3", "-s"))
	time.Sleep(300 * time.Millisecond) // let the server bind before the first client

	s := tp.service(b)
	plan := topoPlan()
	many := manyHostsPlan()
	var stopFP func()
	configs := []benchConfig{
		{name: "none", apply: s.Remove},
		{name: "masquerade-only", apply: func() error { return s.loadRaw(natOnly(plan)) }, v4: true},
		{name: "gizmo", apply: func() error { return s.Apply(plan) }, v4: true},
		{name: "gizmo+1000hosts", apply: func() error { return s.Apply(many) }},
		{name: "gizmo+fastpath", apply: func() (err error) {
			_, stopFP, err = applyWithFastpath(b, s, tp, plan)
			return err
		}, done: func() { stopFP() }, v4: true},
	}
	results := samples[float64]{}
	for range rounds {
		for _, c := range shuffled(configs) {
			c.measure(b, func() {
				results.add(c.name, "tcp6 Gbit/s", iperfTCP(b, tp.lan, topoWAN6, secs))
				results.add(c.name, "udp6-64 pps", iperfUDP64(b, tp.lan, topoWAN6, tp.wan, secs))
				if c.v4 {
					results.add(c.name, "tcp4 Gbit/s", iperfTCP(b, tp.lan, topoWAN4, secs))
					results.add(c.name, "udp4-64 pps", iperfUDP64(b, tp.lan, topoWAN4, tp.wan, secs))
				}
			})
		}
	}
	if err := s.Remove(); err != nil {
		b.Fatal(err)
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-18s %-13s %10s %10s %10s   (%d rounds of %d s)\n", "config", "test", "min", "median", "max", rounds, secs)
	results.each(configs, []string{"tcp6 Gbit/s", "udp6-64 pps", "tcp4 Gbit/s", "udp4-64 pps"}, func(config, test string, v []float64) {
		fmt.Fprintf(&sb, "%-18s %-13s %10.4g %10.4g %10.4g\n", config, test, slices.Min(v), median(v), slices.Max(v))
		b.ReportMetric(median(v), strings.ReplaceAll(config+"/"+test, " ", "_"))
	})
	results.compare([]comparisons{
		{tests: []string{"tcp6 Gbit/s", "udp6-64 pps"}, pairs: [][2]string{
			{"gizmo+fastpath", "none"}, {"gizmo+fastpath", "gizmo"}, {"gizmo", "none"}, {"gizmo+1000hosts", "none"}, {"masquerade-only", "none"}}},
		{tests: []string{"tcp4 Gbit/s", "udp4-64 pps"}, pairs: [][2]string{{"gizmo", "masquerade-only"}}},
	}, func(num, den, test string, n, d []float64) {
		// Other load on the machine only ever slows a run down, so
		// the best run of each is the least disturbed estimate.
		fmt.Fprintf(&sb, "ratio %s / %s, %s: median %.3f, best %.3f\n", num, den, test, median(n)/median(d), slices.Max(n)/slices.Max(d))
	})
	b.Log(sb.String())
}

// cpuPerPacket sends n 64-byte UDP datagrams from ns to dst on one locked
// thread and returns the thread's CPU time per packet. The veth hops and
// the router's forwarding run as softirqs in the sending thread's context
// (tick accounting without IRQ_TIME_ACCOUNTING charges them to it), so the
// figure covers the whole path: sender, router, receiver. Unlike
// throughput, CPU time hardly moves when other load shares the machine.
func cpuPerPacket(b *testing.B, ns, dst string, n int, established bool) time.Duration {
	b.Helper()
	var perPacket time.Duration
	testns.Inside(b, ns, func() {
		c, err := net.Dial("udp", dst)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 64)
		if established {
			// One answered datagram makes the flow established in
			// conntrack (it has seen a reply), as a UDP exchange or any
			// TCP connection is after its handshake.
			// On a busy machine the receiver may still be draining
			// the previous run's flood when the hello arrives, and
			// its full socket buffer drops it: ask again.
			var err error
			for range 5 {
				if _, err = c.Write([]byte("hello")); err != nil {
					b.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err = c.Read(buf); err == nil {
					break
				}
			}
			if err != nil {
				b.Fatalf("no answer from %s: %v", dst, err)
			}
		}
		var before, after unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &before); err != nil {
			b.Fatal(err)
		}
		for range n {
			// Drops on the way (a full queue) still cost the path up to
			// the drop; errors from a full socket buffer are ignored.
			_, _ = c.Write(buf)
		}
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &after); err != nil {
			b.Fatal(err)
		}
		cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
		perPacket = cpu / time.Duration(n)
	})
	return perPacket
}

// sinkOnWAN listens on the UDP address addr in the topology's WAN
// namespace, for the benchmark's packets, answering with answerFirst.
func sinkOnWAN(b *testing.B, tp *topo, addr string) {
	go answerFirst(testns.ListenPacket(b, tp.wan, "udp", addr))
}

// answerFirst receives on pc and answers each "hello" once; everything
// else stays unread until the socket buffer is full and the kernel drops
// it, the cheapest end a forwarded packet can have.
func answerFirst(pc net.PacketConn) {
	buf := make([]byte, 64)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if string(buf[:n]) == "hello" {
			_, _ = pc.WriteTo([]byte("hi"), from)
		}
	}
}

// BenchmarkForwardingCPU measures the CPU cost per forwarded 64-byte UDP
// packet with and without the ruleset, interleaving the configurations in
// every round: for an established flow (the common case: two rules) and
// for a one-way stream, whose every packet is "new" to conntrack and walks
// the source checks and inbound rules.
//
//	sudo go test ./services/firewall -run '^$' -bench ForwardingCPU -benchtime 1x -v
func BenchmarkForwardingCPU(b *testing.B) {
	testns.NeedRoot(b)
	rounds, n := envInt("FW_BENCH_ROUNDS", 5), envInt("FW_BENCH_PACKETS", 300000)
	tp := newTopo(b)
	sinkOnWAN(b, tp, "["+topoWAN6+"]:9999")
	sinkOnWAN(b, tp, topoWAN4+":9999")
	s := tp.service(b)
	plan := topoPlan()
	many := manyHostsPlan()
	var (
		stopFP func()
		fpRuns []string
	)
	withFastpath := func() error {
		fp, stop, err := applyWithFastpath(b, s, tp, plan)
		if err != nil {
			return err
		}
		stopFP = func() {
			st := fp.Stats()
			fpRuns = append(fpRuns, fmt.Sprintf("fast path: %d packets offloaded, to the stack: %v", st.Packets, nonZero(st.ToStack)))
			stop()
		}
		return nil
	}
	configs := []benchConfig{
		{name: "none", apply: s.Remove},
		{name: "conntrack+masquerade", apply: func() error { return s.loadRaw(natOnly(plan)) }, v4: true},
		{name: "gizmo", apply: func() error { return s.Apply(plan) }, v4: true},
		{name: "gizmo+1000hosts", apply: func() error { return s.Apply(many) }},
		// The ruleset with services/fastpath: established flows skip
		// netfilter; the one-way stream is never offloaded.
		{name: "gizmo+fastpath", apply: withFastpath, done: func() { stopFP() }, v4: true},
	}
	cpu := samples[time.Duration]{}
	for range rounds {
		for _, c := range shuffled(configs) {
			c.measure(b, func() {
				paths := map[string]string{"udp6": "[" + topoWAN6 + "]:9999"}
				if c.v4 {
					paths["udp4"] = topoWAN4 + ":9999"
				}
				for path, dst := range paths {
					cpu.add(c.name, path+"-est", cpuPerPacket(b, tp.lan, dst, n, true))
					cpu.add(c.name, path+"-oneway", cpuPerPacket(b, tp.lan, dst, n, false))
				}
			})
		}
	}
	// The fast path's programs on their own: the kernel measures their
	// run time while BPF statistics are on (BPF_ENABLE_STATS, off again
	// when closed), which adds two clock reads per run, so this is kept
	// out of the rounds above.
	if err := withFastpath(); err != nil {
		b.Fatal(err)
	}
	if bpfStats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME); err != nil {
		b.Logf("no BPF run time statistics: %v", err)
	} else {
		cpuPerPacket(b, tp.lan, "["+topoWAN6+"]:9999", n, true)
		fpRuns = append(fpRuns, fmt.Sprintf("BPF run time per call, established flow (includes the statistics' own clock reads): %v", fastpathPrograms(b, tp.router)))
		bpfStats.Close()
	}
	stopFP()
	if err := s.Remove(); err != nil {
		b.Fatal(err)
	}
	// The CPU clock is sampled at each tick (4 ms at HZ=250): the median
	// of the rounds is the estimate, the minimum shows the spread.
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nCPU per forwarded 64-byte UDP packet, whole path, %d rounds of %d packets\n", rounds, n)
	fmt.Fprintf(&sb, "%-22s %-12s %8s %8s %8s\n", "config", "path", "min ns", "median", "max")
	cpu.each(configs, []string{"udp6-est", "udp6-oneway", "udp4-est", "udp4-oneway"}, func(config, path string, v []time.Duration) {
		fmt.Fprintf(&sb, "%-22s %-12s %8d %8d %8d\n", config, path, slices.Min(v).Nanoseconds(), median(v).Nanoseconds(), slices.Max(v).Nanoseconds())
		b.ReportMetric(float64(median(v).Nanoseconds()), config+"/"+path+"_ns/packet")
	})
	cpu.compare([]comparisons{
		{tests: []string{"udp6-est", "udp6-oneway"}, pairs: [][2]string{
			{"gizmo+fastpath", "none"}, {"gizmo+fastpath", "gizmo"}, {"gizmo", "none"}, {"gizmo+1000hosts", "none"},
			{"conntrack+masquerade", "none"}, {"gizmo", "conntrack+masquerade"}}},
		{tests: []string{"udp4-est", "udp4-oneway"}, pairs: [][2]string{{"gizmo", "conntrack+masquerade"}, {"gizmo+fastpath", "gizmo"}}},
	}, func(num, den, path string, ns, ds []time.Duration) {
		n, d := median(ns), median(ds)
		fmt.Fprintf(&sb, "cost %s / %s, %s: %.3f (%+d ns/packet)\n", num, den, path, float64(n)/float64(d), (n - d).Nanoseconds())
	})
	sb.WriteString(strings.Join(fpRuns, "\n") + "\n")
	b.Log(sb.String())
}

// BenchmarkFastpathCPU is the established-flow case of ForwardingCPU alone,
// in many short rounds: the reference (no ruleset, no conntrack), the
// ruleset, and the ruleset with services/fastpath, in a new order every
// round. Each round gives the two ratios to the reference measured next to
// it, so that the machine's drifts cancel within a round; the median of
// the per-round ratios is the estimate. On a loaded machine it scatters far
// less than the medians of the absolute figures.
//
//	sudo FW_BENCH_ROUNDS=31 FW_BENCH_PACKETS=50000 \
//	  go test ./services/firewall -run '^$' -bench FastpathCPU -benchtime 1x -v
func BenchmarkFastpathCPU(b *testing.B) {
	testns.NeedRoot(b)
	rounds, n := envInt("FW_BENCH_ROUNDS", 31), envInt("FW_BENCH_PACKETS", 50000)
	tp := newTopo(b)
	sinkOnWAN(b, tp, "["+topoWAN6+"]:9999")
	s := tp.service(b)
	plan := topoPlan()
	var fp *fastpath.Service
	_, stopFP := runFastpath(b, tp, plan.LANPrefixes)
	stopFP()
	var offloaded, sent uint64
	configs := []benchConfig{
		{name: "none", apply: s.Remove},
		{name: "gizmo", apply: func() error { return s.Apply(plan) }},
		{name: "gizmo+fastpath", apply: func() (err error) {
			fp, stopFP, err = applyWithFastpath(b, s, tp, plan)
			return err
		}, done: func() {
			offloaded += fp.Stats().Packets
			sent += uint64(n)
			stopFP()
		}},
	}
	dst := "[" + topoWAN6 + "]:9999"
	per := map[string][]time.Duration{}
	ratios := map[string][]float64{}
	for range rounds {
		got := map[string]time.Duration{}
		for _, c := range shuffled(configs) {
			c.measure(b, func() {
				got[c.name] = cpuPerPacket(b, tp.lan, dst, n, true)
				per[c.name] = append(per[c.name], got[c.name])
			})
		}
		for _, name := range []string{"gizmo", "gizmo+fastpath"} {
			ratios[name] = append(ratios[name], float64(got[name])/float64(got["none"]))
		}
	}
	if err := s.Remove(); err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nCPU per forwarded 64-byte UDP packet, established IPv6 flow, %d rounds of %d packets\n", rounds, n)
	for _, c := range configs {
		q1, med, q3 := quartiles(per[c.name])
		fmt.Fprintf(&sb, "%-16s median %5d ns  quartiles %5d %5d\n", c.name, med.Nanoseconds(), q1.Nanoseconds(), q3.Nanoseconds())
		b.ReportMetric(float64(med.Nanoseconds()), c.name+"_ns/packet")
	}
	for _, name := range []string{"gizmo", "gizmo+fastpath"} {
		q1, med, q3 := quartiles(ratios[name])
		fmt.Fprintf(&sb, "cost %s / none, per-round ratio: median %.3f, quartiles %.3f %.3f\n", name, med, q1, q3)
		b.ReportMetric(med, name+"/none")
	}
	fmt.Fprintf(&sb, "fast path carried %d of the %d packets sent in its rounds\n", offloaded, sent)
	b.Log(sb.String())
}

// manyHostsPlan is topoPlan with 1000 hosts' exposed ports (two addresses
// and two ports each, 4000 set elements), to show that the cost per packet
// does not grow with the number of hosts.
func manyHostsPlan() Plan {
	p := topoPlan()
	addHosts(&p, 1000)
	return p
}
