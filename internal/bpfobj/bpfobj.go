// Package bpfobj holds what the eBPF datapath packages do alike with their
// bpf2go objects: reporting a failed load, and reading per-CPU counters.
package bpfobj

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// LoadError describes a failed load of an object's programs and maps. A
// verifier rejection carries the verifier's whole log (%+v): its last line
// alone rarely says which bound the program missed.
func LoadError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("load: %+v", ve)
	}
	return fmt.Errorf("load: %w", err)
}

// SumPerCPU is the total over all CPUs of the uint64 at key in a per-CPU
// array: the programs count without atomics, one slot per CPU.
func SumPerCPU(m *ebpf.Map, key uint32) (uint64, error) {
	var per []uint64
	if err := m.Lookup(key, &per); err != nil {
		return 0, err
	}
	var sum uint64
	for _, v := range per {
		sum += v
	}
	return sum, nil
}

// Counters reads the per-CPU counter array m whose key i counts names[i].
func Counters(m *ebpf.Map, names []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(names))
	for i, name := range names {
		v, err := SumPerCPU(m, uint32(i))
		if err != nil {
			return nil, fmt.Errorf("counter %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// AttachTCX attaches the programs in order, each as opts says. When one
// fails, those already attached are detached again: a datapath is either
// wholly attached or not at all.
func AttachTCX(opts ...link.TCXOptions) ([]link.Link, error) {
	links := make([]link.Link, 0, len(opts))
	for _, o := range opts {
		l, err := link.AttachTCX(o)
		if err != nil {
			Detach(links)
			return nil, fmt.Errorf("attach to ifindex %d (%v): %w", o.Interface, o.Attach, err)
		}
		links = append(links, l)
	}
	return links, nil
}

// Detach closes links, which detaches their programs.
func Detach(links []link.Link) {
	for _, l := range links {
		l.Close()
	}
}
