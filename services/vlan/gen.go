package vlan

// The BPF object is generated from bpf/vlan.c and committed; gen.sh
// regenerates it and CI checks that nothing changed. UAPI headers only (no
// vmlinux.h, no CO-RE): the target kernels have no BTF.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel,bpfeb vlan bpf/vlan.c
