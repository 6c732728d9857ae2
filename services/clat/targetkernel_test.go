package clat

import (
	"os"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// TestTargetKernelQEMU boots gokrazy's kernel.amd64 (no BTF, no BPF JIT)
// under qemu with this test binary as init and runs the BPF_PROG_TEST_RUN
// tests there: the verifier and the translation on the kernel the
// appliance runs.

const targetMarker = "CLAT-TARGET-EXIT"

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
		// The netns tests need iproute2, nftables and tayga, which the VM
		// does not have.
		Cmdline: "-- -test.v -test.count=1 -test.skip=^(TestNetns|TestTargetKernel)",
	})
}
