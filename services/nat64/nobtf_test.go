package nat64

import (
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// The target kernels (gokrazy's) have no usable vmlinux BTF and no BPF JIT.
// The verifier needs BTF for a global (non-static) subprogram with a
// context argument: it checks the argument types against the kernel's
// struct __sk_buff and refuses the program with "btf_vmlinux is
// malformed". CO-RE relocations, kfunc calls and callbacks (bpf_loop)
// would need it too, and callbacks and kfuncs do not run without a JIT
// either. These tests keep all of that out of the object;
// TestTargetKernelQEMU runs them on gokrazy's kernel.

// TestNoContextInGlobalFunctions fails when a global function other than
// the two entry points takes a context pointer, or when the object has
// CO-RE relocations, kfunc calls or callbacks. Global functions with plain
// memory and scalar arguments need only the object's own BTF.
func TestNoContextInGlobalFunctions(t *testing.T) {
	spec, err := loadNat64()
	if err != nil {
		t.Fatal(err)
	}
	targetkernel.CheckNoKernelBTF(t, spec)
}

// TestLoadWithoutKernelTypes loads both programs with an empty kernel type
// set, so that the loader cannot use the running kernel's BTF, and checks
// their deepest call chain against the stack of a kernel without a JIT
// (frames rounded to 32 bytes, where a JIT rounds to 16). It cannot take
// the running kernel's own BTF away from its verifier:
// TestNoContextInGlobalFunctions covers that.
func TestLoadWithoutKernelTypes(t *testing.T) {
	testns.NeedRoot(t)
	spec, err := loadNat64()
	if err != nil {
		t.Fatal(err)
	}
	targetkernel.LoadWithoutKernelTypes(t, spec)
}
