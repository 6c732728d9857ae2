package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// markerEnv is set in the environment of every process the lab starts, so
// that Cleanup finds them even when the process that started them crashed.
const markerEnv = "GIZMO_LAB_RUNDIR"

// process is one daemon started by the lab.
type process struct {
	name    string
	ns      string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited and was reaped
	waitErr error         // valid after done is closed
}

// runCmd runs a short command on the host and returns its combined output.
func runCmd(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	return cmd.CombinedOutput()
}

// Exec runs argv inside namespace ns (via `ip netns exec`) and returns its
// combined output. A non-zero exit is an error that includes the output.
func Exec(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("netlab: exec: empty argv")
	}
	out, err := runCmd(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	if err != nil {
		return out, fmt.Errorf("netlab: %s in %s: %w: %s", strings.Join(argv, " "), ns, err, tail(out, 10))
	}
	return out, nil
}

// spawn starts a long-running daemon inside ns, in its own session so that
// it survives the terminal, with stdout and stderr appended to logPath.
func (l *Lab) spawn(name, ns, logPath string, argv []string, env ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("netlab: start %s: %w", name, err)
	}
	defer logf.Close()
	full := argv
	if ns != "" {
		full = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = l.runDir
	cmd.Env = append(append(os.Environ(), markerEnv+"="+l.runDir, "GIZMO_LAB_PROC="+name), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netlab: start %s: %w", name, err)
	}
	p := &process{name: name, ns: ns, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	_ = os.WriteFile(filepath.Join(l.runDir, name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	l.logger.Debug("started", "proc", name, "ns", ns, "pid", cmd.Process.Pid)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs. Helpers the
// daemon forked (dhcpcd's and radvd's privilege-separated children) share
// its process group (the daemon leads its own session), and get SIGKILL
// once the daemon itself is gone.
func (p *process) stop(grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	defer syscall.Kill(-pgid, syscall.SIGKILL)
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("netlab: %s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// logTail returns the last n lines of the process's log.
func (p *process) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(b, n)
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls check until it succeeds, the process exits, or the
// timeout passes; errors name the daemon and show the tail of its log.
func waitReady(ctx context.Context, p *process, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("netlab: %s exited during start-up (%v); last log lines:\n%s", p.name, p.waitErr, p.logTail(20))
		}
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netlab: %s not ready after %s: %v; last log lines:\n%s", p.name, timeout, last, p.logTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// labProcesses lists the pids of processes (other than this one) whose
// environment carries the lab marker.
func labProcesses() []int {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(env, []byte("\x00"+markerEnv+"=")) || bytes.HasPrefix(env, []byte(markerEnv+"=")) {
			if alive(pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z'
}

// killAll sends SIGTERM, waits up to grace, then SIGKILLs what is left.
func killAll(logger *slog.Logger, pids []int, grace time.Duration) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	if waitGone(pids, grace) {
		return
	}
	for _, pid := range pids {
		if alive(pid) {
			logger.Warn("SIGKILL after grace period", "pid", pid, "cmd", cmdline(pid))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	waitGone(pids, 3*time.Second)
}

// waitGone waits up to d for every process in pids to be gone and reports
// whether they are.
func waitGone(pids []int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !slices.ContainsFunc(pids, alive) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
