package aftr

// The BPF object is generated from bpf/aftr.c and committed; gen.sh
// regenerates it and CI checks that nothing changed.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel,bpfeb -type config -type softwire aftr bpf/aftr.c
