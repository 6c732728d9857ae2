package dslite

// The BPF object is generated from bpf/dslite.c and committed; gen.sh
// regenerates it and CI checks that nothing changed. Only UAPI headers are
// used (no vmlinux.h): the target kernels have no BTF for CO-RE.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel,bpfeb -type config dslite bpf/dslite.c
