// Package nstest gives the dhcp4 tests and benchmark their own network
// namespaces (gzt-d4-*, never the lab's gz-*), and runs code inside them.
package nstest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Create makes a network namespace gzt-d4-<role>-<random> with lo up and
// returns its name.
func Create(role string) (string, error) {
	name := fmt.Sprintf("gzt-d4-%s-%04x", role, rand.Uint32N(0x10000))
	if err := IP("netns", "add", name); err != nil {
		return "", err
	}
	if err := IP("-n", name, "link", "set", "lo", "up"); err != nil {
		Delete(name)
		return "", err
	}
	return name, nil
}

// Delete removes the namespace; processes still in it keep it alive, so
// callers stop theirs first.
func Delete(name string) error { return IP("netns", "del", name) }

// IP runs ip(8) and returns its output in the error.
func IP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Do runs fn on an OS thread that has entered namespace name. Sockets
// created in fn stay in that namespace after Do returns.
func Do(name string, fn func() error) error {
	errc := make(chan error, 1)
	// A goroutine of its own: if the thread cannot return to the original
	// namespace, the goroutine ends with the thread still locked and Go
	// discards the thread, so nothing else ever runs in the wrong place.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Command is a command that runs inside the namespace.
func Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", name}, args...)...)
}
