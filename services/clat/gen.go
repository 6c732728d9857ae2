package clat

// The BPF object is generated from bpf/clat.c and committed; gen.sh
// regenerates it and CI checks that nothing changed. The program includes
// the NAT64's headers (services/nat64/bpf): a change there needs this
// object regenerated too. UAPI headers only (no vmlinux.h, no CO-RE): the
// target kernels have no BTF.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel,bpfeb -type config clat bpf/clat.c
