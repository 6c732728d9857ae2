package firewall

import (
	"os"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// targetMarker prefixes the exit line the test binary prints as the VM's
// init.
const targetMarker = "FIREWALL-TARGET-EXIT"

func TestMain(m *testing.M) {
	if targetkernel.IsInit() {
		targetkernel.RunAsInit(m.Run, targetMarker)
	}
	os.Exit(m.Run())
}

// TestTargetKernelCost runs BenchmarkRouterPath on gokrazy's kernel.amd64,
// which has no BPF JIT, with the guest's clock counting instructions: what
// a packet of an established IPv6 flow costs through the gizmo's real
// ruleset, with and without the fast path, in the kernel the APU runs
// (docs/performance.md, "Without a JIT (APU)").
func TestTargetKernelCost(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		Marker:   targetMarker,
		MemoryMB: 1024,
		Timeout:  15 * time.Minute,
		Icount:   true,
		Cmdline:  "-- -test.run ^$ -test.bench ^BenchmarkRouterPath$ -test.benchtime 1x",
		Show:     `path: .*`,
	})
}
