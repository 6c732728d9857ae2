package fastpath

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// The target kernels (gokrazy's) have no vmlinux BTF and no BPF JIT. These
// tests keep out of the object what needs either, and load it the way the
// target's verifier sees it; TestTargetKernelQEMU runs them there.

func TestNothingNeedsKernelBTF(t *testing.T) {
	spec, err := loadFastpath()
	if err != nil {
		t.Fatal(err)
	}
	targetkernel.CheckNoKernelBTF(t, spec)
}

// TestLoadWithoutKernelTypes loads every program with an empty kernel type
// set and logs the verifier's work. The stack check rounds frames to 32
// bytes as the interpreter does (a JIT rounds to 16).
func TestLoadWithoutKernelTypes(t *testing.T) {
	needRoot(t)
	spec, err := loadFastpath()
	if err != nil {
		t.Fatal(err)
	}
	targetkernel.LoadWithoutKernelTypes(t, spec)
}
