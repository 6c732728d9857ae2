package nat64

import (
	"os"
	"path/filepath"
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// The machine the tests usually run on has a BPF JIT and vmlinux BTF; the
// target kernels have neither, and their verifier refuses what this one
// accepts (global functions taking the context, a call chain that fits
// 512 bytes only with the JIT's 16-byte rounding). TestTargetKernelQEMU
// boots gokrazy's kernel.amd64 under qemu with this test binary as init
// and runs the BPF_PROG_TEST_RUN tests there, under the interpreter.

func TestMain(m *testing.M) { targetkernel.Main(m) }

func TestTargetKernelQEMU(t *testing.T) {
	o := targetkernel.Options{
		MemoryMB: 1024,
		MustPass: "TestLoadWithoutKernelTypes",
		// Everything that runs on BPF_PROG_TEST_RUN; the netns tests need
		// iproute2 and friends, which the VM does not have.
		Skip: "^(TestNetns|TestScale|TestTargetKernel)",
	}
	if gb := grayboxDir(); gb != "" {
		o.Dirs = map[string]string{"jool": gb}
		o.Env = []string{"GIZMO_JOOL_GRAYBOX=/jool"}
	}
	targetkernel.Run(t, o)
}

// grayboxDir is where grayboxSuite looks for the Jool cases, or "".
func grayboxDir() string {
	dir := os.Getenv("GIZMO_JOOL_GRAYBOX")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "conformance", "jool-graybox")
	}
	if _, err := os.Stat(filepath.Join(dir, "cases.tsv")); err != nil {
		return ""
	}
	return dir
}

// TestTargetKernelCost runs BenchmarkPacketCost and its profile,
// BenchmarkHelperCost, on gokrazy's kernel, in
// its interpreter, with the guest's clock counting instructions: what the
// programs cost per packet on the appliance, as instructions executed and
// as a multiple of the pass-through program's (docs/performance.md,
// "Without a JIT").
func TestTargetKernelCost(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		Bench:    "^Benchmark(PacketCost|HelperCost|RouterPath)$",
		MemoryMB: 1024,
		Icount:   true,
		Show:     `(cost|step|path): .*`,
	})
}
