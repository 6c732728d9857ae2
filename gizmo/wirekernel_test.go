package main

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

// The sysctl answers where it exists ("exists and is not 0"); where it
// does not, the kernel is asked with a program.
func TestBPFJIT(t *testing.T) {
	probe := func(jit bool, err error) func() (bool, error) {
		return func() (bool, error) { return jit, err }
	}
	noProbe := func() (bool, error) {
		t.Error("probed although the sysctl answered")
		return false, nil
	}
	for _, tc := range []struct {
		name    string
		sysctl  string
		readErr error
		probe   func() (bool, error)
		jit     bool
		how     string
		wantErr bool
	}{
		{"bpf_jit_enable 1: JIT on (always 1 with CONFIG_BPF_JIT_ALWAYS_ON)", "1\n", nil, noProbe, true, "sysctl", false},
		{"bpf_jit_enable 2: JIT on with debug output", "2\n", nil, noProbe, true, "sysctl", false},
		{"bpf_jit_enable 0: JIT built but off, the interpreter runs", "0\n", nil, noProbe, false, "sysctl", false},
		{"no sysctl, the probe compiled: a network namespace other than the initial one", "", fs.ErrNotExist, probe(true, nil), true, "probe", false},
		{"no sysctl, the probe interpreted: a kernel without CONFIG_BPF_JIT (gokrazy's kernel.amd64)", "", fs.ErrNotExist, probe(false, nil), false, "probe", false},
		{"no sysctl and no probe: unknown", "", fs.ErrNotExist, probe(false, errors.New("operation not permitted")), false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jit, how, err := bpfJIT([]byte(tc.sysctl), tc.readErr, tc.probe)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if jit != tc.jit || how != tc.how {
				t.Errorf("jit %v from %q, want %v from %q", jit, how, tc.jit, tc.how)
			}
		})
	}
}

// On this machine the probe agrees with the sysctl (in the initial network
// namespace, where the sysctl exists).
func TestProbeBPFJITAgreesWithSysctl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load a program")
	}
	b, err := os.ReadFile(bpfJITSysctl)
	if err != nil {
		t.Skipf("no sysctl to compare with: %v", err)
	}
	want, _, _ := bpfJIT(b, nil, nil)
	got, err := probeBPFJIT()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("probe says JIT %v, %s says %q", got, bpfJITSysctl, b)
	}
}
