package bpfobj

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

func TestLoadErrorKeepsOtherErrors(t *testing.T) {
	cause := errors.New("map create: operation not permitted")
	err := LoadError(cause)
	if !errors.Is(err, cause) {
		t.Fatalf("LoadError(%v) = %v, does not wrap the cause", cause, err)
	}
	if got, want := err.Error(), "load: map create: operation not permitted"; got != want {
		t.Errorf("LoadError: %q, want %q", got, want)
	}
}

// A per-CPU array the way the datapaths count: one slot per CPU, summed.
func TestCountersSumEveryCPU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a BPF map needs root")
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	if err != nil {
		t.Fatalf("per-CPU array: %v", err)
	}
	defer m.Close()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	per := make([]uint64, ncpu)
	for i := range per {
		per[i] = uint64(i + 1)
	}
	if err := m.Put(uint32(1), per); err != nil {
		t.Fatal(err)
	}
	got, err := Counters(m, []string{"none", "some"})
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(ncpu * (ncpu + 1) / 2)
	if got["none"] != 0 || got["some"] != want {
		t.Errorf("Counters = %v, want none 0, some %d", got, want)
	}
	if _, err := Counters(m, []string{"a", "b", "past the end"}); err == nil || !strings.Contains(err.Error(), "counter past the end") {
		t.Errorf("Counters past the array's end: err %v, want one naming the counter", err)
	}
}
