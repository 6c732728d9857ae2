package dslite

import (
	"os"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// TestTargetKernelQEMU boots gokrazy's kernel.amd64 (no BTF, no BPF JIT)
// under qemu with this test binary as init, and runs the BPF_PROG_TEST_RUN
// tests there: the verifier and the programs' decisions on the kernel the
// appliance runs, and the decapsulation flag of bpf_skb_adjust_room that
// Debian's headers lack.

const targetMarker = "DSLITE-TARGET-EXIT"

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
		MustPass: "TestDecapsulation",
		// The netns test needs iproute2 and the DNS lookups a network,
		// which the VM does not have.
		Cmdline: "-- -test.v -test.count=1 -test.skip=^(TestNetns|TestTargetKernel|TestLookupAAAA|TestServiceResolves)",
	})
}
