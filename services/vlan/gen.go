package vlan

// The BPF object is generated from bpf/vlan.c and committed; `go generate`
// regenerates it through internal/bpfgen (the flags all eBPF packages share)
// and CI checks that nothing changed.
//go:generate go run codeberg.org/monostack/gizmo/internal/bpfgen vlan bpf/vlan.c
