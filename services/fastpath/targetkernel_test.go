package fastpath

import (
	"os"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// TestTargetKernelQEMU boots gokrazy's kernel.amd64 (no BTF, no BPF JIT)
// under qemu with this test binary as init, and runs the other tests of
// the package there: the verifier and the programs' decisions on the
// kernel the appliance runs.

const targetMarker = "FASTPATH-TARGET-EXIT"

func TestMain(m *testing.M) {
	if targetkernel.IsInit() {
		targetkernel.RunAsInit(m.Run, targetMarker)
	}
	os.Exit(m.Run())
}

func TestTargetKernelQEMU(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		Marker:   targetMarker,
		Timeout:  10 * time.Minute,
		MustPass: "TestLoadWithoutKernelTypes",
		Cmdline:  "-- -test.v -test.count=1 -test.skip=^TestTargetKernel",
	})
}

// TestTargetKernelCost runs BenchmarkPacketCost on gokrazy's kernel, in
// its interpreter, with the guest's clock counting instructions
// (docs/performance.md, "Without a JIT").
func TestTargetKernelCost(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		Marker:  targetMarker,
		Timeout: 10 * time.Minute,
		Icount:  true,
		Cmdline: "-- -test.run ^$ -test.bench ^Benchmark(PacketCost|RouterPath)$ -test.benchtime 1x",
		Show:    `(cost|path): .*`,
	})
}
