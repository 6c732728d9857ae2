package targetkernel

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// The target kernels have no vmlinux BTF and no BPF JIT. The verifier
// needs BTF for a global (non-static) subprogram that takes the context
// (it checks the argument against the kernel's struct __sk_buff), for
// CO-RE relocations and kfuncs; callbacks and kfuncs need a JIT. The
// checks below keep all of that out of an object, and load it the way the
// target's verifier sees it, on any kernel.

// CheckObject checks the programs of the object load returns the way
// the target kernels would see them: CheckNoKernelBTF, and, as root,
// LoadWithoutKernelTypes.
func CheckObject(t *testing.T, load func() (*ebpf.CollectionSpec, error)) {
	t.Helper()
	spec, err := load()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("NothingNeedsKernelBTF", func(t *testing.T) { CheckNoKernelBTF(t, spec) })
	t.Run("LoadWithoutKernelTypes", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: loads BPF programs")
		}
		LoadWithoutKernelTypes(t, spec)
	})
}

// CheckNoKernelBTF fails t for anything in spec's programs that needs
// kernel BTF or a JIT. Global subprograms with plain memory and scalar
// arguments need only the object's own BTF and are fine.
func CheckNoKernelBTF(t testing.TB, spec *ebpf.CollectionSpec) {
	t.Helper()
	for name, p := range spec.Programs {
		funcs := 0
		for i := range p.Instructions {
			ins := &p.Instructions[i]
			fn := btf.FuncMetadata(ins)
			if fn != nil {
				funcs++
			}
			if fn != nil && fn.Name != p.Name && fn.Linkage == btf.GlobalFunc && takesContext(fn) {
				t.Errorf("%s: global subprogram %s takes the context; it must be static (the verifier checks it against the kernel's BTF)", name, fn.Name)
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
		if funcs == 0 {
			t.Errorf("%s: no function metadata; the check saw none of the program's functions", name)
		}
	}
}

// takesContext reports whether one of fn's parameters points to struct
// __sk_buff, the context of tc programs.
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

var (
	processedRe = regexp.MustCompile(`processed (\d+) insns`)
	stackRe     = regexp.MustCompile(`stack depth ([0-9+]+)`)
)

// LoadWithoutKernelTypes loads spec's programs (and the maps they use)
// with an empty kernel type set, so that the loader cannot lean on the
// running kernel's BTF, logs the verifier's instruction counts and checks
// each program's deepest call chain against the 512 bytes of BPF stack as
// a kernel without a JIT counts them. Only the maps a program uses are
// created; map pinning is turned off.
func LoadWithoutKernelTypes(t testing.TB, spec *ebpf.CollectionSpec) {
	t.Helper()
	spec = spec.Copy()
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	empty, err := btf.LoadSpecFromReader(bytes.NewReader(emptyBTF()))
	if err != nil {
		t.Fatal(err)
	}
	for name, ps := range spec.Programs {
		maps := map[string]*ebpf.MapSpec{}
		for _, ins := range ps.Instructions {
			if m, ok := spec.Maps[ins.Reference()]; ok {
				maps[ins.Reference()] = m
			}
		}
		coll, err := ebpf.NewCollectionWithOptions(&ebpf.CollectionSpec{
			Maps: maps, Programs: map[string]*ebpf.ProgramSpec{name: ps}, Types: spec.Types, ByteOrder: spec.ByteOrder,
		}, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: empty, LogLevel: ebpf.LogLevelStats}})
		if err != nil {
			var ve *ebpf.VerifierError
			if errors.As(err, &ve) {
				t.Fatalf("%s: load: %+v", name, ve)
			}
			t.Fatalf("%s: load: %v", name, err)
		}
		log := coll.Programs[name].VerifierLog
		coll.Close()
		m := processedRe.FindStringSubmatch(log)
		if m == nil {
			t.Errorf("%s: no instruction count in the verifier log: %q", name, log)
			continue
		}
		t.Logf("%s: verifier processed %s instructions (limit 1000000)", name, m[1])
		checkInterpreterStack(t, name, ps, log)
	}
}

// checkInterpreterStack checks the deepest call chain with every frame
// rounded up to 32 bytes, the interpreter's granularity (a JIT rounds to
// 16, so a load on a machine with a JIT would not notice a chain only the
// interpreter refuses: "combined stack size of 3 calls is 544").
func checkInterpreterStack(t testing.TB, name string, p *ebpf.ProgramSpec, log string) {
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
	// The kernel numbers the subprograms in instruction order; a call
	// names its target by symbol.
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
	t.Logf("%s: deepest call chain %s: %d bytes of stack without a JIT (limit 512)", name, strings.Join(chain, " → "), d)
	if d > 512 {
		t.Errorf("%s: call chain %s needs %d bytes of stack when frames are rounded to 32 bytes (no JIT); the limit is 512", name, strings.Join(chain, " → "), d)
	}
}

// emptyBTF is a BTF blob with a header and no types.
func emptyBTF() []byte {
	return []byte{
		0x9f, 0xeb, // magic, little endian
		1, 0, // version, flags
		24, 0, 0, 0, // header length
		0, 0, 0, 0, // type offset
		0, 0, 0, 0, // type length
		0, 0, 0, 0, // string offset
		1, 0, 0, 0, // string length
		0, // the empty string
	}
}
