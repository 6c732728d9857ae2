package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// bpfJITSysctl says whether Linux compiles eBPF programs to machine code:
// 0 off, 1 on, 2 on with debug output; with CONFIG_BPF_JIT_ALWAYS_ON it is
// always 1. It is absent in a kernel built without a JIT, and in every
// network namespace but the initial one (the lab runs the gizmo in one).
const bpfJITSysctl = "/proc/sys/net/core/bpf_jit_enable"

// wireKernel observes the kernel once, before any plan is made: whether
// it has a BPF JIT decides whether the fast path pays (plan.Fastpath). A
// kernel does not change while it runs.
func wireKernel(d *daemon, _ config, _, _ string) error {
	b, err := os.ReadFile(bpfJITSysctl)
	jit, how, err := bpfJIT(b, err, probeBPFJIT)
	if err != nil {
		// Unobserved, the plans assume a JIT, as on every machine the
		// gizmo was measured on besides the APU.
		d.log.Warn("cannot tell whether the kernel has a BPF JIT", "err", err)
		return nil
	}
	d.log.Info("kernel observed", "bpf_jit", jit, "from", how)
	d.observe(func(st *state.State) { st.Kernel = state.Kernel{Observed: true, BPFJIT: jit} })
	return nil
}

// bpfJIT decides from the sysctl's content, or the error reading it. Where
// the sysctl cannot tell, probe asks the kernel itself: how says which
// answered.
func bpfJIT(sysctl []byte, readErr error, probe func() (bool, error)) (jit bool, how string, err error) {
	if readErr == nil {
		return strings.TrimSpace(string(sysctl)) != "0", "sysctl", nil
	}
	jit, err = probe()
	if err != nil {
		return false, "", fmt.Errorf("%s: %v; probe: %w", bpfJITSysctl, readErr, err)
	}
	return jit, "probe", nil
}

// probeBPFJIT loads the smallest program and asks the kernel whether it
// compiled it: the kernel reports the length of a program's machine code
// to a privileged caller, zero for one its interpreter runs.
func probeBPFJIT() (bool, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "gizmo_jit_probe",
		Type:         ebpf.SocketFilter,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "Dual BSD/GPL",
	})
	if err != nil {
		return false, fmt.Errorf("load a program: %w", err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return false, fmt.Errorf("program info: %w", err)
	}
	_, err = info.JitedSize()
	return err == nil, nil
}
