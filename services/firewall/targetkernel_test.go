package firewall

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

func TestMain(m *testing.M) { targetkernel.Main(m) }

// TestTargetKernelCost runs BenchmarkRouterPath on gokrazy's kernel.amd64,
// which has no BPF JIT, with the guest's clock counting instructions: what
// a packet of an established IPv6 flow costs through the gizmo's real
// ruleset, with and without the fast path, in the kernel the APU runs
// (docs/performance.md, "Without a JIT (APU)").
func TestTargetKernelCost(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		Bench:    "^BenchmarkRouterPath$",
		MemoryMB: 1024,
		Icount:   true,
		Show:     `path: .*`,
	})
}
