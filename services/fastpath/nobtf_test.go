package fastpath

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// The target kernels (gokrazy's) have no vmlinux BTF and no BPF JIT. These
// tests keep out of the object what needs either, and load it the way the
// target's verifier sees it; TestTargetKernelQEMU runs them there.

func TestNothingNeedsKernelBTF(t *testing.T) {
	spec, err := loadFastpath()
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range spec.Programs {
		for i := range p.Instructions {
			ins := &p.Instructions[i]
			if fn := btf.FuncMetadata(ins); fn != nil && fn.Name != p.Name && fn.Linkage == btf.GlobalFunc {
				t.Errorf("%s: global subprogram %s (the verifier would check its arguments against kernel BTF)", name, fn.Name)
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
	}
}

var (
	processedRe = regexp.MustCompile(`processed (\d+) insns`)
	stackRe     = regexp.MustCompile(`stack depth ([0-9+]+)`)
)

// TestLoadWithoutKernelTypes loads every program with an empty kernel type
// set and logs the verifier's work. The stack check rounds frames to 32
// bytes as the interpreter does (a JIT rounds to 16).
func TestLoadWithoutKernelTypes(t *testing.T) {
	needRoot(t)
	spec, err := loadFastpath()
	if err != nil {
		t.Fatal(err)
	}
	empty, err := btf.LoadSpecFromReader(bytes.NewReader(emptyBTF()))
	if err != nil {
		t.Fatal(err)
	}
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
	for name, p := range coll.Programs {
		m := processedRe.FindStringSubmatch(p.VerifierLog)
		s := stackRe.FindStringSubmatch(p.VerifierLog)
		if m == nil || s == nil {
			t.Errorf("%s: no instruction count or stack depth in the verifier log: %q", name, p.VerifierLog)
			continue
		}
		depth, err := strconv.Atoi(s[1])
		if err != nil {
			t.Errorf("%s: stack depth %q: one function expected (everything is inlined)", name, s[1])
			continue
		}
		t.Logf("%s: verifier processed %s instructions (limit 1000000), stack %d bytes", name, m[1], depth)
		if (depth+31)/32*32 > 512 {
			t.Errorf("%s: %d bytes of stack, more than 512 without a JIT", name, depth)
		}
	}
}

// emptyBTF is a BTF blob with a header, no types and the empty string.
func emptyBTF() []byte {
	return []byte{
		0x9f, 0xeb, 1, 0, // magic (little endian), version, flags
		24, 0, 0, 0, // header length
		0, 0, 0, 0, 0, 0, 0, 0, // type offset, length
		0, 0, 0, 0, 1, 0, 0, 0, // string offset, length
		0,
	}
}
