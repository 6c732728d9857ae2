package fastpath

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// The target kernels (gokrazy's) have no vmlinux BTF and no BPF JIT. This
// test keeps out of the object what needs either, and loads it the way the
// target's verifier sees it (the stack check rounds frames to 32 bytes as
// the interpreter does; a JIT rounds to 16); TestTargetKernelQEMU runs it
// there.
func TestObjectFitsTargetKernel(t *testing.T) { targetkernel.CheckObject(t, loadFastpath) }
