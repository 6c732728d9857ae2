// Command bench compares the gizmo's eBPF NAT64 with the classic Linux
// ways of doing the same job, side by side in one run, on one machine:
//
//	gizmo   the eBPF NAT64 (services/nat64), as shipped: every limit on,
//	        at its default
//	tayga   tayga (user-space NAT64 on a tun) + nftables masquerade
//	nat44   kernel IPv4 NAT44 (conntrack masquerade), IPv4 client
//	ipv6    plain IPv6 forwarding, the ceiling
//
// and the same two on one segment, the router's one port (the gizmo's
// existing-network mode, onearm.go):
//
//	gizmo-onearm  the eBPF NAT64 as the daemon runs it there
//	ipv6-onearm   plain IPv6 forwarding in and out of the one port
//
// Each mode gets its own client ── router ── server chain of network
// namespaces (gzt-bench-*) for the whole run and is measured for TCP
// throughput (iperf3), 64-byte UDP packets per second (iperf3) and new TCP
// connections per second (Go dialers with SO_LINGER 0, a burst of -conns
// spread over sixteen LAN hosts with their own MACs and addresses, as a
// home's connections are: chain.go, measure.go). The modes are interleaved: each round measures every
// metric for all modes back to back, so that drift in the machine's load
// falls on all of them alike, and the ratios are taken within a round.
// After the rounds, one host opens connections from one address until the
// gizmo refuses it, and its neighbour opens one (no ratio). The tables go
// to stdout in Markdown. Run as root:
//
//	go run ./services/nat64/bench -runs 5 -t 3
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"

	"codeberg.org/monostack/gizmo/internal/benchns"
)

var (
	runs     = flag.Int("runs", 5, "runs per measurement")
	seconds  = flag.Int("t", 3, "seconds per run of iperf3")
	conns    = flag.Int("conns", 3000, "connections per run of the connection test, spread over the LAN hosts (each holds a pool port for 4.5 minutes)")
	modesArg = flag.String("modes", "gizmo,tayga,nat44,ipv6", "modes to measure (also gizmo-onearm, ipv6-onearm)")
	bpfStats = flag.Bool("bpfstats", false, "also report the NAT64 programs' run time per packet (sets kernel.bpf_stats_enabled during the run, which adds a little to every BPF program)")
)

// metrics are measured in this order in every round.
var metrics = []struct {
	name string
	f    func(u setUp) (float64, error)
}{
	{"TCP throughput (Gbit/s)", func(u setUp) (float64, error) { return iperfRate(u.ch, u.mode, false) }},
	{"64-byte UDP (packets/s)", func(u setUp) (float64, error) { return iperfRate(u.ch, u.mode, true) }},
	{"new TCP connections/s", func(u setUp) (float64, error) { return connRate(u.ch, u) }},
}

// setUp is one mode's chain, ready to measure.
type setUp struct {
	mode
	*running
	ch *chain
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
			u.stop()
			u.ch.Close()
		}
	}()
	for _, m := range modes {
		if !slices.Contains(want, m.name) {
			continue
		}
		newCh := newChain
		if m.oneArm {
			newCh = newOneArm
		}
		ch, err := newCh()
		if err == nil {
			var r *running
			r, err = m.setup(ch)
			if err == nil {
				ups = append(ups, setUp{m, r, ch})
			} else {
				ch.Close()
			}
		}
		if err != nil {
			slog.Error("set-up", "mode", m.name, "err", err)
			return
		}
		// Warm up: neighbour discovery, tayga's dynamic mapping.
		exec.Command("ip", benchns.In(ch.Client, "ping", "-c", "3", "-i", "0.2", "-w", "10", m.target)[1:]...).Run()
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
				f := func() (float64, error) { return x.f(u) }
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
	if slices.Contains(want, "gizmo") {
		// On a chain and a translator of its own: the rounds' bindings
		// hold pool ports for minutes.
		r, err := measureAtLimit()
		if err != nil {
			slog.Error("at the limit", "err", err)
		} else {
			reportAtLimit(r)
		}
	}
	if progs != nil {
		progs.report()
	}
}
