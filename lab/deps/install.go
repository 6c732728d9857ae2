package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// NoInstallEnv, set to anything but "" or "0", tells every Installer not
// to run apt-get: what is missing is reported instead.
const NoInstallEnv = "GIZMO_LAB_NO_INSTALL"

// MissingError reports packages that are missing and were not installed.
type MissingError struct {
	Packages []string
	// Why they were not installed, e.g. "not root".
	Why string
}

func (e *MissingError) Error() string {
	list := strings.Join(e.Packages, " ")
	msg := fmt.Sprintf("missing Debian packages: %s; install them with: sudo apt-get install %s", list, list)
	if e.Why != "" {
		msg += " (" + e.Why + ")"
	}
	return msg
}

// Installer installs the missing packages of some groups. The zero value
// installs with apt-get when it can and announces it on stderr.
type Installer struct {
	// Who needs the packages, for the announcement; default "the lab".
	Who string
	// Out gets the one-line announcement; nil means os.Stderr.
	Out io.Writer
	// NoInstall reports missing packages instead of installing them (so
	// does NoInstallEnv).
	NoInstall bool
	// Have reports whether what the code uses is there; nil means Have.
	Have func(use string) bool

	// For tests: the command runner, whether we are root, and the path of
	// the guard that keeps packaged daemons from starting.
	run      func(ctx context.Context, argv ...string) ([]byte, error)
	isRoot   func() bool
	policyRC string
}

// Have is what Installer uses by default: a command is found in PATH, as
// the code runs it; an absolute path must exist.
func Have(use string) bool {
	if filepath.IsAbs(use) {
		_, err := os.Stat(use)
		return err == nil
	}
	_, err := exec.LookPath(use)
	return err == nil
}

// Ensure makes sure the packages of the groups are installed. What is
// missing is installed with apt-get, announced in one line; where apt-get
// cannot run (not root, no apt-get, NoInstall, or apt-get fails) it
// returns a *MissingError naming the packages. It never builds or starts
// anything else, so a caller can call it before it changes the machine.
func (in Installer) Ensure(ctx context.Context, groups ...Group) error {
	have := in.Have
	if have == nil {
		have = Have
	}
	missing := Missing(have, groups...)
	if len(missing) == 0 {
		return nil
	}
	if why := in.cannotInstall(); why != "" {
		return &MissingError{Packages: missing, Why: why}
	}
	// Two test packages may find the same packages missing at once; apt
	// takes one at a time, and the second finds them installed.
	unlock, err := lockInstall(ctx)
	if err != nil {
		return &MissingError{Packages: missing, Why: err.Error()}
	}
	defer unlock()
	if missing = Missing(have, groups...); len(missing) == 0 {
		return nil
	}
	who := in.Who
	if who == "" {
		who = "the lab"
	}
	out := in.Out
	if out == nil {
		out = os.Stderr
	}
	noun := "packages"
	if len(missing) == 1 {
		noun = "package"
	}
	fmt.Fprintf(out, "lab: installing %d Debian %s %s needs: %s\n", len(missing), noun, who, strings.Join(missing, " "))
	if err := in.aptInstall(ctx, missing); err != nil {
		return &MissingError{Packages: missing, Why: err.Error()}
	}
	if still := Missing(have, groups...); len(still) > 0 {
		return &MissingError{Packages: still, Why: "apt-get installed them, but " + notFound(have, still) + " is still not found (is it in PATH?)"}
	}
	return nil
}

// cannotInstall says why apt-get cannot run here, or "".
func (in Installer) cannotInstall() string {
	if in.NoInstall {
		return "not installing them: -no-install"
	}
	if v := os.Getenv(NoInstallEnv); v != "" && v != "0" {
		return "not installing them: " + NoInstallEnv + " is set"
	}
	isRoot := in.isRoot
	if isRoot == nil {
		isRoot = func() bool { return os.Geteuid() == 0 }
	}
	if !isRoot() {
		return "not root, so not installing them"
	}
	if in.run == nil {
		if _, err := exec.LookPath("apt-get"); err != nil {
			return "no apt-get on this machine"
		}
	}
	return ""
}

// aptInstall installs pkgs. Packaged daemons (kea, bind9, unbound, radvd,
// chrony) must not start on the host while they are installed: the lab
// starts its own copies inside namespaces. invoke-rc.d asks
// /usr/sbin/policy-rc.d first, and exit code 101 forbids every start
// (Debian policy, "policy-rc.d"); a guard written here is removed again.
func (in Installer) aptInstall(ctx context.Context, pkgs []string) error {
	run := in.run
	if run == nil {
		run = runCommand
	}
	guard := in.policyRC
	if guard == "" {
		guard = "/usr/sbin/policy-rc.d"
	}
	created, err := writeGuard(guard)
	if err != nil {
		return err
	}
	if created {
		defer os.Remove(guard)
	}
	install := append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends",
		"-o", "DPkg::Lock::Timeout=600"}, pkgs...)
	if _, err := run(ctx, install...); err == nil {
		return nil
	}
	// Missing or stale package lists (a fresh machine has none): update
	// them, then try once more.
	if out, err := run(ctx, "apt-get", "update", "-qq"); err != nil {
		return fmt.Errorf("apt-get update: %v: %s", err, lastLine(out))
	}
	if out, err := run(ctx, install...); err != nil {
		return fmt.Errorf("apt-get install: %v: %s", err, lastLine(out))
	}
	return nil
}

// writeGuard writes a policy-rc.d that forbids starting services, unless
// one is there already; created tells whether it wrote one.
func writeGuard(path string) (created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.WriteString("#!/bin/sh\n# The gizmo lab installs packages: no service starts on the host meanwhile.\nexit 101\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

func runCommand(ctx context.Context, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd.CombinedOutput()
}

// lastLine is the last non-empty line of apt's output: its error ("E: …").
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return "no output"
}

// notFound names what have does not find of the packages.
func notFound(have func(string) bool, pkgs []string) string {
	var uses []string
	for _, p := range packages {
		if !slices.Contains(pkgs, p.Name) {
			continue
		}
		for _, u := range p.Uses {
			if !have(u) {
				uses = append(uses, u)
			}
		}
	}
	return strings.Join(uses, ", ")
}

// lockName is an abstract unix socket: binding it is the lock, and the
// kernel frees it when the holder exits, leaving no file.
const lockName = "@gizmo-deps.lock"

// lockInstall waits until ctx is done for the machine-wide install lock.
func lockInstall(ctx context.Context) (unlock func(), err error) {
	addr := &net.UnixAddr{Name: lockName, Net: "unix"}
	for {
		ln, err := net.ListenUnix("unix", addr)
		if err == nil {
			return func() { ln.Close() }, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("install lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another install: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
