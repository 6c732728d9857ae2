package clat

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// The target kernels (gokrazy's) have no vmlinux BTF and no BPF JIT: these
// tests keep out of the object what needs either and load it as their
// verifier would; TestTargetKernelQEMU runs them on gokrazy's kernel.

func TestNothingNeedsKernelBTF(t *testing.T) {
	spec, err := loadClat()
	if err != nil {
		t.Fatal(err)
	}
	targetkernel.CheckNoKernelBTF(t, spec)
}

func TestLoadWithoutKernelTypes(t *testing.T) {
	needRoot(t)
	spec, err := loadClat()
	if err != nil {
		t.Fatal(err)
	}
	targetkernel.LoadWithoutKernelTypes(t, spec)
}
