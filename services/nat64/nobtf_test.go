package nat64

import (
	"bytes"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// The target kernels (gokrazy's) have no usable vmlinux BTF. The verifier
// needs it for a global (non-static) subprogram with a context argument:
// it checks the argument types against the kernel's struct __sk_buff and
// refuses the program with "btf_vmlinux is malformed". CO-RE relocations,
// kfunc calls and callbacks (bpf_loop) would need it too, and callbacks and
// kfuncs do not run without a JIT either. These tests keep all of that out
// of the object.

// TestNoContextInGlobalFunctions fails when a global function other than
// the two entry points takes a context pointer, or when the object has
// CO-RE relocations, kfunc calls or callbacks. Global functions with plain
// memory and scalar arguments need only the object's own BTF.
func TestNoContextInGlobalFunctions(t *testing.T) {
	spec, err := loadNat64()
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range spec.Programs {
		subprogs := 0
		for i := range p.Instructions {
			ins := &p.Instructions[i]
			if fn := btf.FuncMetadata(ins); fn != nil && fn.Name != p.Name {
				subprogs++
				if fn.Linkage == btf.GlobalFunc && takesContext(fn) {
					t.Errorf("%s: global subprogram %s takes the context; it must be static (the verifier checks a global function's context argument against the kernel BTF)", name, fn.Name)
				}
			}
			if btf.CORERelocationMetadata(ins) != nil {
				t.Errorf("%s: instruction %d has a CO-RE relocation (needs kernel BTF)", name, i)
			}
			if ins.IsKfuncCall() {
				t.Errorf("%s: instruction %d calls a kfunc (needs kernel BTF and a JIT)", name, i)
			}
			if ins.IsLoadOfFunctionPointer() {
				t.Errorf("%s: instruction %d loads a callback (needs a JIT)", name, i)
			}
		}
		if subprogs == 0 {
			t.Errorf("%s: no subprograms found; the check saw no function metadata", name)
		}
	}
}

// takesContext reports whether one of fn's parameters is a pointer to
// struct __sk_buff (the context of tc programs).
func takesContext(fn *btf.Func) bool {
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		return true // unknown: assume the worst
	}
	for _, p := range proto.Params {
		ptr, ok := btf.UnderlyingType(p.Type).(*btf.Pointer)
		if !ok {
			continue
		}
		if st, ok := btf.UnderlyingType(ptr.Target).(*btf.Struct); ok && st.Name == "__sk_buff" {
			return true
		}
	}
	return false
}

var processedRe = regexp.MustCompile(`processed (\d+) insns`)

// TestLoadWithoutKernelTypes loads both programs with an empty kernel type
// set, so that the loader cannot use the running kernel's BTF, and logs
// the verifier's instruction count. It cannot take the running kernel's
// own BTF away from its verifier: TestNoGlobalSubprograms covers that.
func TestLoadWithoutKernelTypes(t *testing.T) {
	needRoot(t)
	spec, err := loadNat64()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	empty, err := btf.LoadSpecFromReader(bytes.NewReader(emptyBTF()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{KernelTypes: empty, LogLevel: ebpf.LogLevelStats},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("load: %+v", ve)
		}
		t.Fatal(err)
	}
	defer coll.Close()
	t.Logf("loaded in %v", time.Since(start).Round(time.Millisecond))
	for name, p := range coll.Programs {
		m := processedRe.FindStringSubmatch(p.VerifierLog)
		if m == nil {
			t.Errorf("%s: no instruction count in the verifier log: %q", name, p.VerifierLog)
			continue
		}
		t.Logf("%s: verifier processed %s instructions (limit 1000000)", name, m[1])
	}
}

// emptyBTF is a BTF blob with a header and no types or strings but the
// empty one.
func emptyBTF() []byte {
	b := []byte{
		0x9f, 0xeb, // magic, little endian
		1, 0, // version, flags
		24, 0, 0, 0, // header length
		0, 0, 0, 0, // type offset
		0, 0, 0, 0, // type length
		0, 0, 0, 0, // string offset
		1, 0, 0, 0, // string length
		0, // the empty string
	}
	return b
}
