// Package testns builds the private network namespaces that service tests
// and benchmarks run in: a namespace with a unique name (gzt-*, never the
// lab's gz-*), veth pairs between namespaces, commands and Go code inside a
// namespace, and cleanup when the test ends.
//
// The lab (lab/netlab) builds the whole virtual home network for the
// integration tests; this package is for a service's own tests, which need
// a link or two and a peer.
package testns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/testrun"
)

// NeedRoot skips the test unless it runs as root: namespaces, veths and
// sysctls need CAP_SYS_ADMIN and CAP_NET_ADMIN.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// Create makes the namespace gzt-<tag>-<random>, brings its loopback up and
// returns its name. Tests use New; Create and Delete are for tools that
// outlive a test (benchmark commands).
func Create(tag string) (string, error) {
	var rnd [3]byte
	rand.Read(rnd[:])
	name := "gzt-" + tag + "-" + hex.EncodeToString(rnd[:])
	if _, err := ip("netns", "add", name); err != nil {
		return "", err
	}
	if _, err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
		Delete(name)
		return "", err
	}
	return name, nil
}

// Delete removes the namespace. Processes still inside keep its network
// alive, so stop them first.
func Delete(name string) error {
	_, err := ip("netns", "del", name)
	return err
}

// New creates a namespace (see Create) that is deleted when the test ends,
// skipping the test without root.
func New(t testing.TB, tag string) string {
	t.Helper()
	NeedRoot(t)
	name, err := Create(tag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Delete(name) })
	return name
}

// Open returns a handle on namespace ns, for services that take a
// namespace fd (Config.NetNS); it is closed when the test ends.
func Open(t testing.TB, ns string) *os.File {
	t.Helper()
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Veth joins namespace ns1 (interface if1) and ns2 (interface if2) with a
// veth pair. Both ends stay down, so that sysctls set next apply before
// the first address appears.
func Veth(t testing.TB, ns1, if1, ns2, if2 string) {
	t.Helper()
	IP(t, "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2)
}

// Run runs a command and returns its combined output; a failure ends the
// test with that output.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// IP runs ip(8) with args, as Run does.
func IP(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, append([]string{"ip"}, args...)...)
}

// Exec runs a command inside namespace ns, as Run does.
func Exec(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return Run(t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Sysctl sets each "key=value" inside namespace ns.
func Sysctl(t testing.TB, ns string, settings ...string) {
	t.Helper()
	Exec(t, ns, append([]string{"sysctl", "-qw"}, settings...)...)
}

// Command returns a command that runs inside namespace ns (through
// `ip netns exec`, which execs it: signalling the process signals the
// command itself).
func Command(ns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// CommandContext is Command, killed when ctx is done.
func CommandContext(ctx context.Context, ns string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// StartCommand starts cmd (a peer daemon, usually from Command) and kills
// and reaps it when the test ends, before the namespaces it runs in are
// deleted.
func StartCommand(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(cmd.Args, " "), err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// WaitLinkLocal waits until ifname in ns has a link-local address that is
// no longer tentative (RFC 4862 §5.4), so that sockets can bind to it.
func WaitLinkLocal(t testing.TB, ns, ifname string) {
	t.Helper()
	var out []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, _ = exec.Command("ip", "-n", ns, "-6", "addr", "show", "dev", ifname, "scope", "link").CombinedOutput()
		if strings.Contains(string(out), "fe80::") && !strings.Contains(string(out), "tentative") {
			return
		}
	}
	t.Fatalf("no usable link-local address on %s in %s:\n%s", ifname, ns, out)
}

// enter moves the calling thread into namespace ns. The caller has locked
// the goroutine to its thread.
func enter(ns string) error {
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	return nil
}

// Do runs fn on an OS thread inside namespace ns and returns fn's error.
// Sockets fn opens stay in ns after Do returns. Goroutines fn starts run
// on other threads, outside ns.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	// A goroutine of its own: if the thread cannot return to its namespace,
	// the goroutine ends with the thread still locked and Go discards the
	// thread, so nothing else ever runs in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := enter(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Inside runs fn on the calling goroutine with its thread inside namespace
// ns, then moves the thread back. Unlike Do, fn may call t.Fatal. Sockets
// fn opens stay in ns; goroutines fn starts run outside it.
func Inside(t testing.TB, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := enter(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked: Go discards it with the goroutine
			// instead of running others in the wrong namespace.
			t.Errorf("setns back from %s: %v", ns, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// Start is testrun.Start with run on an OS thread inside namespace ns.
//
// The thread never leaves ns: it ends with the goroutine. Sockets and
// netlink handles that run opens on that thread are in ns; goroutines it
// starts run on other threads, outside ns, so they must use what run
// opened.
func Start(t testing.TB, ns string, run func(context.Context) error) (stop func() error) {
	t.Helper()
	return testrun.Start(t, "in "+ns, func(ctx context.Context) error {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := enter(ns); err != nil {
			return err
		}
		return run(ctx)
	})
}

// ip runs ip(8) and puts its output in the error.
func ip(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
