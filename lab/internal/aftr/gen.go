package aftr

// The BPF object is generated from bpf/aftr.c and committed; `go generate`
// regenerates it through internal/bpfgen (the flags all eBPF packages share)
// and CI checks that nothing changed.
//go:generate go run codeberg.org/monostack/gizmo/internal/bpfgen -type config -type softwire aftr bpf/aftr.c
