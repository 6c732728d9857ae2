package netlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// LockName is the machine-wide lab lock: an abstract unix socket in the
// host's network namespace. Binding it is the lock. The kernel drops it when
// the holder exits, even by SIGKILL, and it leaves no file behind, so a
// crashed Up never blocks the next one and `down` leaves nothing.
const LockName = "@gizmo-lab.lock"

type machineLock struct {
	ln *net.UnixListener
}

// acquireLock waits (until ctx is done) for the machine-wide lab lock.
func acquireLock(ctx context.Context, logger *slog.Logger) (*machineLock, error) {
	addr := &net.UnixAddr{Name: LockName, Net: "unix"}
	for waited := false; ; waited = true {
		ln, err := net.ListenUnix("unix", addr)
		if err == nil {
			return &machineLock{ln: ln}, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("netlab: lock %s: %w", LockName, err)
		}
		if !waited {
			if pid, ok := LockHolder(); ok {
				logger.Info("waiting for the lab lock", "holder_pid", pid, "holder", cmdline(pid))
			}
		}
		select {
		case <-ctx.Done():
			holder := "unknown"
			if pid, ok := LockHolder(); ok {
				holder = fmt.Sprintf("pid %d (%s)", pid, cmdline(pid))
			}
			return nil, fmt.Errorf("netlab: waiting for the lab lock held by %s (a lab left up by `lab up` is removed with `lab down`): %w", holder, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *machineLock) release() {
	if m != nil && m.ln != nil {
		m.ln.Close()
	}
}

// LockHolder returns the pid of the process that holds the lab lock, if any.
// It asks the kernel for the peer credentials of the listening socket.
func LockHolder() (int, bool) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: LockName, Net: "unix"})
	if err != nil {
		return 0, false
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false
	}
	return int(cred.Pid), true
}
