package clat

// The BPF object is generated from bpf/clat.c and committed; `go generate`
// regenerates it through internal/bpfgen (the flags all eBPF packages share)
// and CI checks that nothing changed.
// The program includes the NAT64's headers (services/nat64/bpf): a change
// there needs this object regenerated too.
//go:generate go run codeberg.org/monostack/gizmo/internal/bpfgen -type config clat bpf/clat.c
