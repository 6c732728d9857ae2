package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progStats reads the run time the kernel accounts to the NAT64 programs
// while kernel.bpf_stats_enabled is on (BPF_ENABLE_STATS): the average
// cost of one packet in the program itself, which iperf3 cannot separate
// from the rest of the path.
type progStats struct {
	enabled io.Closer
	start   map[ebpf.ProgramID]sample
}

type sample struct {
	name      string
	runs, nss uint64
}

func startProgStats() (*progStats, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable BPF run time stats: %w", err)
	}
	p := &progStats{enabled: c}
	p.start, err = nat64Programs()
	if err != nil {
		c.Close()
		return nil, err
	}
	return p, nil
}

// nat64Programs samples the loaded programs named nat64_*. Tests of other
// packages may load some too; only the ones alive at both samples count.
func nat64Programs() (map[ebpf.ProgramID]sample, error) {
	out := map[ebpf.ProgramID]sample{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, io.EOF) || next == 0 {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("next program after %d: %w", id, err)
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
		out[id] = sample{info.Name, st.RunCount, uint64(st.Runtime.Nanoseconds())}
	}
}

func (p *progStats) report() {
	end, err := nat64Programs()
	if err != nil {
		slog.Error("bpf stats", "err", err)
		return
	}
	fmt.Println()
	fmt.Println("| program | packets | ns per packet (kernel.bpf_stats_enabled) |\n|---|---|---|")
	for id, e := range end {
		s, ok := p.start[id]
		if !ok || e.runs <= s.runs {
			continue
		}
		n := e.runs - s.runs
		fmt.Printf("| %s (id %d) | %d | %.0f |\n", e.name, id, n, float64(e.nss-s.nss)/float64(n))
	}
}

func (p *progStats) close() { p.enabled.Close() }
