package nat64

// The BPF object is generated from bpf/nat64.c and committed; `go generate`
// regenerates it through internal/bpfgen (the flags all eBPF packages share)
// and CI checks that nothing changed. No function that takes the skb may be
// global (TestNoContextInGlobalFunctions).
//go:generate go run codeberg.org/monostack/gizmo/internal/bpfgen -type config -type bib6_key -type bib6_val -type bib4_key -type bib4_val -type sess_key -type sess_val -type adf_key -type host_stats -type lpm6_key -type lpm4_key nat64 bpf/nat64.c
