package fastpath

// The BPF object is generated from bpf/fastpath.c and committed; `go generate`
// regenerates it through internal/bpfgen (the flags all eBPF packages share)
// and CI checks that nothing changed.
//go:generate go run codeberg.org/monostack/gizmo/internal/bpfgen -type config -type flow_key -type flow_val -type host_stats -type prefix6 fastpath bpf/fastpath.c
