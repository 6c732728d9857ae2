package nat64

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"strings"
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
		checkInterpreterStack(t, name, spec.Programs[name], p.VerifierLog)
	}
}

var stackRe = regexp.MustCompile(`stack depth ([0-9+]+)`)

// checkInterpreterStack checks the deepest call chain against the 512
// bytes of BPF stack the way a kernel without a JIT counts it: every frame
// rounded up to 32 bytes (the interpreter's granularity), where a JIT
// rounds to 16. The target amd64 kernel has no JIT, this VM has one, so
// the load above would not notice a chain that only the interpreter
// refuses ("combined stack size of 3 calls is 544. Too large").
func checkInterpreterStack(t *testing.T, name string, p *ebpf.ProgramSpec, log string) {
	t.Helper()
	m := stackRe.FindStringSubmatch(log)
	if m == nil {
		t.Errorf("%s: no stack depth in the verifier log", name)
		return
	}
	var depths []int
	for _, f := range strings.Split(m[1], "+") {
		d, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: stack depth %q: %v", name, m[1], err)
		}
		depths = append(depths, d)
	}
	// The kernel numbers the subprograms in instruction order, as
	// cilium/ebpf lays them out; a call names its target by symbol.
	var funcs []string
	calls := map[string][]string{}
	cur := ""
	for i := range p.Instructions {
		ins := &p.Instructions[i]
		if fn := btf.FuncMetadata(ins); fn != nil {
			cur = fn.Name
			funcs = append(funcs, cur)
		}
		if ins.IsFunctionCall() && ins.Reference() != "" {
			calls[cur] = append(calls[cur], ins.Reference())
		}
	}
	if len(funcs) != len(depths) {
		t.Errorf("%s: %d functions but %d stack depths (%s)", name, len(funcs), len(depths), m[1])
		return
	}
	frame := map[string]int{}
	for i, f := range funcs {
		frame[f] = (max(depths[i], 1) + 31) / 32 * 32
	}
	var deepest func(f string, seen map[string]bool) (int, []string)
	deepest = func(f string, seen map[string]bool) (int, []string) {
		if seen[f] {
			t.Fatalf("%s: recursion through %s", name, f)
		}
		seen[f] = true
		defer delete(seen, f)
		best, chain := 0, []string(nil)
		for _, c := range calls[f] {
			if d, ch := deepest(c, seen); d > best {
				best, chain = d, ch
			}
		}
		return frame[f] + best, append([]string{f}, chain...)
	}
	d, chain := deepest(funcs[0], map[string]bool{})
	t.Logf("%s: frames %s; deepest call chain %s: %d bytes of stack without a JIT (limit 512)", name, m[1], strings.Join(chain, " → "), d)
	if d > 512 {
		t.Errorf("%s: call chain %s needs %d bytes of stack when frames are rounded to 32 bytes (no JIT); the limit is 512", name, strings.Join(chain, " → "), d)
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
