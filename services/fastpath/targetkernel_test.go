package fastpath

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// TestTargetKernelQEMU boots gokrazy's kernel.amd64 (no BTF, no BPF JIT)
// under qemu with this test binary as init, and runs the other tests of
// the package there: the verifier and the programs' decisions on the
// kernel the appliance runs.

func TestMain(m *testing.M) { targetkernel.Main(m) }

func TestTargetKernelQEMU(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		MustPass: "TestObjectFitsTargetKernel/LoadWithoutKernelTypes",
		Skip:     "^TestTargetKernel",
	})
}

// TestTargetKernelCost runs BenchmarkPacketCost on gokrazy's kernel, in
// its interpreter, with the guest's clock counting instructions
// (docs/performance.md, "Without a JIT").
func TestTargetKernelCost(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		Bench:  "^Benchmark(PacketCost|RouterPath)$",
		Icount: true,
		Show:   `(cost|path): .*`,
	})
}
