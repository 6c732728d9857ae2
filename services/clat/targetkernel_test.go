package clat

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// TestTargetKernelQEMU boots gokrazy's kernel.amd64 (no BTF, no BPF JIT)
// under qemu with this test binary as init and runs the BPF_PROG_TEST_RUN
// tests there: the verifier and the translation on the kernel the
// appliance runs.

func TestMain(m *testing.M) { targetkernel.Main(m) }

func TestTargetKernelQEMU(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		MustPass: "TestObjectFitsTargetKernel/LoadWithoutKernelTypes",
		// The netns tests need iproute2, nftables and tayga, which the VM
		// does not have.
		Skip: "^(TestNetns|TestTargetKernel)",
	})
}
