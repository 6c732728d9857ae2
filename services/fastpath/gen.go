package fastpath

// The BPF object is generated from bpf/fastpath.c and committed; gen.sh
// regenerates it and CI checks that nothing changed. UAPI headers only (no
// vmlinux.h, no CO-RE): the target kernels have no BTF.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel,bpfeb -type config -type flow_key -type flow_val -type host_stats -type prefix6 fastpath bpf/fastpath.c
