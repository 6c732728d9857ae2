// Package targetkernel runs a package's tests on the kernel the appliance
// boots: gokrazy's kernel.amd64 under qemu, which has neither vmlinux BTF
// nor a BPF JIT, so that its verifier and interpreter judge the eBPF
// programs instead of the build machine's. The test binary itself is the
// VM's init: the package's TestMain is Main, which runs the tests as init
// when it finds itself as PID 1.
package targetkernel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
)

// IsInit reports whether this process is the VM's init.
func IsInit() bool { return os.Getpid() == 1 }

// Main is a package's TestMain: as the VM's init it runs the tests there
// (runAsInit), elsewhere it runs them as usual.
func Main(m *testing.M) {
	if IsInit() {
		runAsInit(m.Run)
	}
	os.Exit(m.Run())
}

// exitMarker prefixes the line with the tests' exit code that init prints
// on the console, where Run looks for it.
const exitMarker = "GIZMO-TARGET-EXIT"

// runAsInit mounts what BPF tests need, runs them with run (a testing.M's
// Run), prints "<exitMarker> <exit code>" on the console and powers the VM
// off. It does not return.
func runAsInit(run func() int) {
	for _, fsys := range []struct{ src, dir, typ string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"bpf", "/sys/fs/bpf", "bpf"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(fsys.dir, 0o755); err != nil {
			fmt.Printf("init: mkdir %s: %v\n", fsys.dir, err)
		}
		if err := syscall.Mount(fsys.src, fsys.dir, fsys.typ, 0, ""); err != nil {
			fmt.Printf("init: mount %s: %v\n", fsys.dir, err)
		}
	}
	_, btfErr := os.Stat("/sys/kernel/btf/vmlinux")
	_, jitErr := os.Stat("/proc/sys/net/core/bpf_jit_enable")
	fmt.Printf("init: vmlinux BTF: %v; BPF JIT: %v\n", btfErr == nil, jitErr == nil)
	code := run()
	fmt.Printf("%s %d\n", exitMarker, code)
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// Options say how to boot the tests of the package in the current
// directory.
type Options struct {
	// Skip is the -test.skip pattern of the tests not to run in the VM
	// (those that need tools or a network the VM does not have); the
	// others run with -test.v.
	Skip string
	// Run, when set, is the -test.run pattern of the only tests to run.
	Run string
	// Bench, when set, is the -test.bench pattern of benchmarks to run
	// once each (-test.benchtime 1x) instead of the tests.
	Bench string
	// Env is "NAME=value" settings for the test binary's environment.
	Env []string
	// Dirs are copied into the VM's root: name in the VM → directory here.
	Dirs map[string]string
	// MemoryMB is the VM's memory; 0 means 512.
	MemoryMB int
	// Timeout bounds building and booting; 0 means 15 minutes.
	Timeout time.Duration
	// MustPass names a test that must have passed in the VM (so that a
	// skip pattern cannot silently skip everything).
	MustPass string
	// Icount makes the guest's clock count executed instructions, one
	// nanosecond each (qemu -icount shift=0), so that the durations the
	// tests measure are instruction counts (see MeasureCost). The guest
	// runs slower.
	Icount bool
	// Show is a regular expression of further console lines to log
	// (the verdicts and the verifier's figures always are).
	Show string
}

// Run builds the current package's test binary for amd64, boots it as
// init of gokrazy's kernel.amd64 under qemu and fails t unless it exited 0.
// It skips without GIZMO_SLOW, on other architectures and without qemu. It
// returns the VM's console for further checks.
func Run(t testing.TB, o Options) []byte {
	t.Helper()
	if os.Getenv("GIZMO_SLOW") == "" {
		t.Skip("slow: set GIZMO_SLOW=1")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("boots kernel.amd64 with an amd64 test binary")
	}
	// Installs qemu when it can, else skips naming the package.
	depstest.Require(t, deps.QEMU)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 512
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()

	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/gokrazy/kernel.amd64").Output()
	if err != nil {
		t.Fatalf("go list kernel.amd64: %v", err)
	}
	kernel := filepath.Join(strings.TrimSpace(string(out)), "vmlinuz")

	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"dev", "proc", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, src := range o.Dirs {
		if err := os.CopyFS(filepath.Join(root, name), os.DirFS(src)); err != nil {
			t.Fatalf("copy %s into the VM: %v", src, err)
		}
	}
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", filepath.Join(root, "init"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, b)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := WriteCPIO(initrd, root); err != nil {
		t.Fatal(err)
	}

	serial := filepath.Join(dir, "serial.log")
	// Two CPUs, as the boards have, emulated by one host thread: with a
	// thread per CPU, TCG races the kernel's live patching of its own text
	// and the guest dies at random of an int3 oops.
	args := []string{"-machine", "pc", "-accel", "tcg,thread=single", "-smp", "2", "-m", fmt.Sprint(o.MemoryMB),
		"-display", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:" + serial,
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 " + o.cmdline()}
	if o.Icount {
		args = append(args, "-icount", "shift=0")
	}
	vm := exec.CommandContext(ctx, qemu, args...)
	qout, err := vm.CombinedOutput()
	console, _ := os.ReadFile(serial)
	if err != nil {
		t.Fatalf("qemu: %v: %s\nconsole:\n%s", err, qout, console)
	}
	show := `init: .*|\s+(nobtf_test|verify)\.go:\d+: .*|\s*--- (FAIL|PASS): .*`
	if o.Show != "" {
		show += "|" + o.Show
	}
	for _, l := range regexp.MustCompile(`(?m)^(`+show+`)$`).FindAll(console, -1) {
		t.Logf("target: %s", strings.TrimSpace(string(l)))
	}
	m := regexp.MustCompile(exitMarker + ` (-?\d+)`).FindSubmatch(console)
	if m == nil || string(m[1]) != "0" {
		t.Fatalf("the tests did not pass on gokrazy's kernel (exit %q); console:\n%s", m, console)
	}
	if o.MustPass != "" && !strings.Contains(string(console), "--- PASS: "+o.MustPass) {
		t.Fatalf("%s did not run on gokrazy's kernel; console:\n%s", o.MustPass, console)
	}
	return console
}

// cmdline is the kernel command line's tail: the kernel hands the
// "NAME=value" words to init as its environment and what follows "--" as
// its arguments.
func (o Options) cmdline() string {
	args := []string{"-test.v", "-test.count=1"}
	switch {
	case o.Bench != "":
		args = []string{"-test.run=^$", "-test.bench=" + o.Bench, "-test.benchtime=1x"}
	case o.Run != "":
		args = append(args, "-test.run="+o.Run)
	}
	if o.Skip != "" {
		args = append(args, "-test.skip="+o.Skip)
	}
	return strings.Join(append(slices.Clone(o.Env), append([]string{"--"}, args...)...), " ")
}

// WriteCPIO writes the tree at root as a newc cpio archive, with the
// /dev/console node the kernel opens for init before devtmpfs is mounted.
func WriteCPIO(path, root string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	ino := 1
	entry := func(name string, mode uint32, major, minor int, data []byte) {
		fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name)+1, 0)
		ino++
		_, _ = io.WriteString(w, name+"\x00")
		_, _ = w.Write(make([]byte, (4-(110+len(name)+1)%4)%4))
		_, _ = w.Write(data)
		_, _ = w.Write(make([]byte, (4-len(data)%4)%4))
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			entry(rel, syscall.S_IFDIR|0o755, 0, 0, nil)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		entry(rel, syscall.S_IFREG|0o755, 0, 0, b)
		return nil
	})
	if err != nil {
		return err
	}
	entry("dev/console", syscall.S_IFCHR|0o600, 5, 1, nil)
	entry("TRAILER!!!", 0, 0, 0, nil)
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
