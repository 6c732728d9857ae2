package dslite

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// TestTargetKernelQEMU boots gokrazy's kernel.amd64 (no BTF, no BPF JIT)
// under qemu with this test binary as init, and runs the BPF_PROG_TEST_RUN
// tests there: the verifier and the programs' decisions on the kernel the
// appliance runs, and the decapsulation flag of bpf_skb_adjust_room that
// Debian's headers lack.

func TestMain(m *testing.M) { targetkernel.Main(m) }

func TestTargetKernelQEMU(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		MustPass: "TestDecapsulation",
		// The netns test needs iproute2 and the DNS lookups a network,
		// which the VM does not have.
		Skip: "^(TestNetns|TestTargetKernel|TestLookupAAAA|TestServiceResolves)",
	})
}
