package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

const readyLine = "lab-supervisor: ready"

// isSupervisor reports whether pid is a `lab supervise` process.
func isSupervisor(pid int) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if kv == "GIZMO_LAB_PROC=supervise" {
			return true
		}
	}
	return false
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// cmdUp starts a detached supervisor that builds the lab and keeps it up,
// shows its progress, and returns once the lab is ready.
func cmdUp(ctx context.Context, logger *slog.Logger, opts cliOptions, hints bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("up needs root: sudo go run ./lab up")
	}
	if err := ensureLabDeps(ctx, opts); err != nil {
		return err
	}
	if pid, ok := netlab.LockHolder(); ok {
		if isSupervisor(pid) {
			fmt.Printf("The lab is already up (supervisor pid %d).\n", pid)
			if hints {
				printHints(os.Stdout)
			}
			return nil
		}
		// A test run holds the lab: queue behind it (the supervisor waits
		// for the lock and reports progress here).
		fmt.Fprintf(os.Stderr, "The lab is in use by pid %d (%s), probably a test run; waiting for it...\n", pid, cmdline(pid))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	args := []string{"supervise"}
	if opts.noGizmo {
		args = append([]string{"-nogizmo"}, args...)
	}
	if opts.gizmoBinary != "" {
		args = append([]string{"-gizmo", opts.gizmoBinary}, args...)
	}
	if opts.verbose {
		args = append([]string{"-v"}, args...)
	}
	if opts.noInstall {
		args = append([]string{"-no-install"}, args...)
	}
	args = append([]string{"-scenario", opts.scenario}, args...)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, args...)
	cmd.ExtraFiles = []*os.File{w} // fd 3: progress until ready
	// No GIZMO_LAB_RUNDIR marker: Cleanup kills marked processes, and a
	// supervisor still queueing for the lock must survive other labs'
	// clean-ups. While it holds the lock, `down` finds it with LockHolder.
	cmd.Env = append(os.Environ(), "GIZMO_LAB_PROC=supervise")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	w.Close()
	ready := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sc.Text() == readyLine {
			ready = true
			break
		}
		fmt.Fprintln(os.Stderr, sc.Text())
	}
	r.Close()
	if !ready {
		_ = cmd.Wait()
		return fmt.Errorf("the lab did not come up (see above); `sudo go run ./lab down` cleans up")
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	fmt.Printf("The lab is up (supervisor pid %d).\n", pid)
	if hints {
		printHints(os.Stdout)
	}
	return nil
}

// switchWriter writes to the progress pipe until the lab is ready, then
// to the lab's log file.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// cmdSupervise is the detached process behind `up`: it holds the lab (and
// its lock) until SIGTERM, then takes it down.
func cmdSupervise(ctx context.Context, opts cliOptions, level slog.Level) error {
	// fd 3 is inherited without close-on-exec; the daemons must not keep it
	// (up waits for it to close).
	unix.CloseOnExec(3)
	progress := os.NewFile(3, "progress")
	sw := &switchWriter{w: progress}
	logger := slog.New(slog.NewTextHandler(sw, &slog.HandlerOptions{Level: level}))
	// The terminal may go away: ignore SIGHUP.
	signal.Ignore(syscall.SIGHUP)
	upCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	l, err := netlab.Up(upCtx, netlab.Options{
		NoGizmo:      opts.noGizmo,
		GizmoBinary:  opts.gizmoBinary,
		HelperBinary: "/proc/self/exe",
		Logger:       logger,
		Scenario:     opts.scenario,
		NoInstall:    opts.noInstall,
	})
	cancel()
	if err != nil {
		logger.Error("lab up failed", "err", err)
		progress.Close()
		return err
	}
	logf, err := os.OpenFile(l.LogPath("lab"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		// Panics and the rest of the log go to <rundir>/lab.log.
		_ = unix.Dup2(int(logf.Fd()), 2)
		sw.w = logf
	}
	fmt.Fprintln(progress, readyLine)
	progress.Close()
	<-ctx.Done()
	logger.Info("supervisor: taking the lab down")
	return l.Down()
}

// cmdDown stops the supervisor (if any) and removes every leftover.
func cmdDown(ctx context.Context, logger *slog.Logger) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("down needs root: sudo go run ./lab down")
	}
	if pid, ok := netlab.LockHolder(); ok {
		if !isSupervisor(pid) {
			return fmt.Errorf("the lab is in use by pid %d (%s), probably a test run; not touching it", pid, cmdline(pid))
		}
		fmt.Printf("Stopping the lab supervisor (pid %d)...\n", pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, held := netlab.LockHolder(); !held {
				break
			}
			if time.Now().After(deadline) {
				logger.Warn("supervisor did not finish; killing it", "pid", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				time.Sleep(200 * time.Millisecond)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	left := netlab.Leftovers(ctx, "")
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := netlab.Cleanup(cctx, netlab.Options{Logger: logger}); err != nil {
		return err
	}
	if len(left) > 0 {
		fmt.Printf("Removed: %s\n", strings.Join(left, "; "))
	}
	if rest := netlab.Leftovers(ctx, ""); len(rest) > 0 {
		return fmt.Errorf("still left: %s", strings.Join(rest, "; "))
	}
	fmt.Println("The lab is down; nothing is left.")
	return nil
}

func cmdStatus(ctx context.Context) error {
	if pid, ok := netlab.LockHolder(); ok {
		who := "a test or another program"
		if isSupervisor(pid) {
			who = "`lab up`"
		}
		fmt.Printf("lab lock held by pid %d (%s): %s\n", pid, who, cmdline(pid))
	} else {
		fmt.Println("lab lock is free")
	}
	left := netlab.Leftovers(ctx, "")
	if len(left) == 0 {
		fmt.Println("nothing of a lab is on this machine")
		return nil
	}
	for _, s := range left {
		fmt.Println("  " + s)
	}
	return nil
}
