// Command bpfgen compiles one package's eBPF C program with bpf2go, with the
// flags every eBPF package in the module shares. A package's gen.go names
// only what is its own:
//
//	//go:generate go run codeberg.org/monostack/gizmo/internal/bpfgen -type config nat64 bpf/nat64.c
//
// and `go generate ./services/nat64/` regenerates its committed object and Go
// bindings; CI checks that this changes nothing.
//
// Only the little-endian object is built: both boards (amd64 and arm64) and
// every machine the lab runs on are little-endian, and bpf2go's bpfel build
// constraint covers them.
//
// The programs use the UAPI headers only (no vmlinux.h, no CO-RE: the target
// kernels have no BTF). Those headers are architecture independent except
// asm/, which Debian keeps in the build machine's multiarch directory; clang
// names that directory, and it is passed here rather than written into the
// gen.go files, so the committed files are the same on every build machine.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bpfgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	out, err := exec.Command("clang", "-print-multiarch").Output()
	if err != nil {
		return fmt.Errorf("asking clang for the multiarch directory: %w", err)
	}
	multiarch := strings.TrimSpace(string(out))
	if multiarch == "" {
		return fmt.Errorf("clang -print-multiarch names no directory for the asm/ headers")
	}
	bpf2go := append([]string{"run", "github.com/cilium/ebpf/cmd/bpf2go",
		"-cc", "clang",
		"-cflags", "-O2 -Wall -Werror -I/usr/include/" + multiarch,
		"-target", "bpfel",
	}, args...)
	cmd := exec.Command("go", bpf2go...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bpf2go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
