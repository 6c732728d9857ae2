package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progStats accounts the run time the kernel records for the NAT64
// programs while kernel.bpf_stats_enabled is on (BPF_ENABLE_STATS): the
// cost of one packet in the program itself, which iperf3 cannot separate
// from the rest of the path. It is kept per metric (program name →
// metric → totals).
type progStats struct {
	enabled io.Closer
	total   map[string]map[string]sample
}

type sample struct {
	runs uint64
	ns   uint64
}

func startProgStats() (*progStats, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable BPF run time stats: %w", err)
	}
	return &progStats{enabled: c, total: map[string]map[string]sample{}}, nil
}

// snapshot samples the loaded programs named nat64_* by id. Tests of other
// packages may load some too; they see no traffic from the bench.
func snapshot() (map[ebpf.ProgramID]sample, map[ebpf.ProgramID]string, error) {
	out, names := map[ebpf.ProgramID]sample{}, map[ebpf.ProgramID]string{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, io.EOF) || next == 0 {
			return out, names, nil
		}
		if err != nil {
			return out, names, fmt.Errorf("next program after %d: %w", id, err)
		}
		id = next
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		info, err := prog.Info()
		if err != nil || !strings.HasPrefix(info.Name, "nat64_") {
			prog.Close()
			continue
		}
		st, err := prog.Stats()
		prog.Close()
		if err != nil {
			continue
		}
		out[id] = sample{st.RunCount, uint64(st.Runtime.Nanoseconds())}
		names[id] = info.Name
	}
}

// measure runs f and adds the programs' work during it to metric.
func (p *progStats) measure(metric string, f func() (float64, error)) (float64, error) {
	before, _, err := snapshot()
	if err != nil {
		return 0, err
	}
	v, ferr := f()
	after, names, err := snapshot()
	if err != nil {
		return v, err
	}
	for id, a := range after {
		b, ok := before[id]
		if !ok || a.runs <= b.runs {
			continue
		}
		n := names[id]
		if p.total[n] == nil {
			p.total[n] = map[string]sample{}
		}
		t := p.total[n][metric]
		t.runs += a.runs - b.runs
		t.ns += a.ns - b.ns
		p.total[n][metric] = t
	}
	return v, ferr
}

func (p *progStats) report() {
	fmt.Println()
	fmt.Println("The gizmo's programs during its measurements (kernel.bpf_stats_enabled):")
	fmt.Println()
	fmt.Println("| program | metric | packets | ns per packet |\n|---|---|---|---|")
	var names []string
	for n := range p.total {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, m := range metrics {
			t, ok := p.total[n][m.name]
			if !ok {
				continue
			}
			fmt.Printf("| %s | %s | %d | %.0f |\n", n, m.name, t.runs, float64(t.ns)/float64(t.runs))
		}
	}
}

func (p *progStats) close() { p.enabled.Close() }
