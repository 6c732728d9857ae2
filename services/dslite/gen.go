package dslite

// The BPF object is generated from bpf/dslite.c and committed; `go generate`
// regenerates it through internal/bpfgen (the flags all eBPF packages share)
// and CI checks that nothing changed.
//go:generate go run codeberg.org/monostack/gizmo/internal/bpfgen -type config dslite bpf/dslite.c
