package firewall

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// iperfTCP runs one iperf3 TCP client in ns against dst and returns the
// received Gbit/s.
func iperfTCP(b *testing.B, ns, dst string, secs int) float64 {
	b.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "iperf3", "-J", "-c", dst, "-t", fmt.Sprint(secs), "-O", "1").Output()
	if err != nil {
		b.Fatalf("iperf3 -c %s: %v\n%s", dst, err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("iperf3 JSON: %v", err)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9
}

// iperfUDP64 sends 64-byte UDP payloads as fast as iperf3 can from ns to
// dst and returns the packets/s that came out of the router: counted on the
// receiving host's interface, not by the receiving socket, which drops
// most of them and would measure itself.
func iperfUDP64(b *testing.B, ns, dst, rxNS string, secs int) float64 {
	b.Helper()
	before := rxPackets(b, rxNS)
	start := time.Now()
	out, err := exec.Command("ip", "netns", "exec", ns, "iperf3", "-c", dst, "-t", fmt.Sprint(secs), "-u", "-b", "0", "-l", "64").CombinedOutput()
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
// run (3). The results go to docs/performance-firewall.md.
func BenchmarkForwarding(b *testing.B) {
	needRoot(b)
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.Skip("needs iperf3")
	}
	rounds, secs := envInt("FW_BENCH_ROUNDS", 5), envInt("FW_BENCH_SECS", 3)
	tp := newTopo(b)
	srv := exec.Command("ip", "netns", "exec", tp.wan, "iperf3", "-s")
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	time.Sleep(300 * time.Millisecond) // let the server bind before the first client

	s, err := New(Config{NetNS: int(tp.routerNS.Fd())})
	if err != nil {
		b.Fatal(err)
	}
	plan := topoPlan()
	many := topoPlan()
	for i := range 1000 {
		many.HostRules = append(many.HostRules, HostRule{
			Host:  fmt.Sprintf("host%d", i),
			Addrs: []netip.Addr{a(fmt.Sprintf("2001:db8:1000:100::%x", 0x1000+i)), a(fmt.Sprintf("2001:db8:1000:100:%x::1", 0x1000+i))},
			Ports: []Port{{TCP, 443}, {UDP, 443}},
		})
	}
	masqOnly := Ruleset{Table: TableName, Chains: []Chain{postrouting(Plan{WAN: "uplink0", Legacy4: plan.Legacy4})}}

	type config struct {
		name  string
		apply func() error
		v4    bool // the IPv4 path needs NAT44 to work at all
	}
	configs := []config{
		{"none", s.Remove, false},
		{"masquerade-only", func() error {
			conn, err := s.conn()
			if err != nil {
				return err
			}
			if err := masqOnly.queue(conn, nil); err != nil {
				return err
			}
			return conn.Flush()
		}, true},
		{"gizmo", func() error { return s.Apply(plan) }, true},
		{"gizmo+1000hosts", func() error { return s.Apply(many) }, false},
	}
	type key struct{ config, test string }
	results := map[key][]float64{}
	for range rounds {
		for _, c := range configs {
			if err := c.apply(); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			add := func(test string, v float64) { results[key{c.name, test}] = append(results[key{c.name, test}], v) }
			add("tcp6 Gbit/s", iperfTCP(b, tp.lan, topoWAN6, secs))
			add("udp6-64 pps", iperfUDP64(b, tp.lan, topoWAN6, tp.wan, secs))
			if c.v4 {
				add("tcp4 Gbit/s", iperfTCP(b, tp.lan, topoWAN4, secs))
				add("udp4-64 pps", iperfUDP64(b, tp.lan, topoWAN4, tp.wan, secs))
			}
		}
	}
	if err := s.Remove(); err != nil {
		b.Fatal(err)
	}

	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-18s %-13s %10s %10s %10s   (%d rounds of %d s)\n", "config", "test", "min", "median", "max", rounds, secs)
	for _, c := range configs {
		for _, test := range []string{"tcp6 Gbit/s", "udp6-64 pps", "tcp4 Gbit/s", "udp4-64 pps"} {
			v := results[key{c.name, test}]
			if len(v) == 0 {
				continue
			}
			fmt.Fprintf(&sb, "%-18s %-13s %10.4g %10.4g %10.4g\n", c.name, test, slices.Min(v), median(v), slices.Max(v))
			b.ReportMetric(median(v), strings.ReplaceAll(c.name+"/"+test, " ", "_"))
		}
	}
	ratio := func(num, den, test string) {
		n, d := results[key{num, test}], results[key{den, test}]
		if len(n) > 0 && len(d) > 0 {
			// Other load on the machine only ever slows a run down, so
			// the best run of each is the least disturbed estimate.
			fmt.Fprintf(&sb, "ratio %s / %s, %s: median %.3f, best %.3f\n", num, den, test, median(n)/median(d), slices.Max(n)/slices.Max(d))
		}
	}
	for _, test := range []string{"tcp6 Gbit/s", "udp6-64 pps"} {
		ratio("gizmo", "none", test)
		ratio("gizmo+1000hosts", "none", test)
		ratio("masquerade-only", "none", test)
	}
	for _, test := range []string{"tcp4 Gbit/s", "udp4-64 pps"} {
		ratio("gizmo", "masquerade-only", test)
	}
	b.Log(sb.String())
}
