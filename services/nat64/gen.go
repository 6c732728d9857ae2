package nat64

// The BPF object is generated from bpf/nat64.c and committed; gen.sh
// regenerates it and CI checks that nothing changed. Only UAPI headers are
// used (no vmlinux.h): the target kernels have no BTF for CO-RE, and no
// function that takes the skb may be global (TestNoContextInGlobalFunctions).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel,bpfeb -type config -type bib6_key -type bib6_val -type bib4_key -type bib4_val -type sess_key -type sess_val -type adf_key -type host_stats -type lpm6_key -type lpm4_key nat64 bpf/nat64.c
