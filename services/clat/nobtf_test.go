package clat

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// The target kernels (gokrazy's) have no vmlinux BTF and no BPF JIT: this
// test keeps out of the object what needs either and loads it as their
// verifier would; TestTargetKernelQEMU runs it on gokrazy's kernel.
func TestObjectFitsTargetKernel(t *testing.T) { targetkernel.CheckObject(t, loadClat) }
