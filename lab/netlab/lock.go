package netlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
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

// queuePrefix names the waiters' tickets: abstract sockets too, so a
// waiter that dies leaves the queue at once. Tickets sort by the time the
// wait began; only the first waiter tries the lock, so the lab is handed on
// in FIFO order instead of to whoever polls at the right moment.
const queuePrefix = "@gizmo-lab.queue."

// queueTickets are the abstract socket names with prefix, as this thread's
// network namespace lists them in /proc/thread-self/net/unix (with a
// leading @). Not /proc/net/unix: that is the namespace of the process's
// main thread, which a goroutine that ends while locked to it in a lab
// namespace leaves there for good, and then the queue would look empty.
// Every thread that runs goroutines is in the host's namespace, as the
// sockets are.
func queueTickets(prefix string) ([]string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := os.ReadFile("/proc/thread-self/net/unix")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[len(f)-1], prefix) {
			out = append(out, f[len(f)-1])
		}
	}
	return out, nil
}

// firstInQueue reports whether ticket is the oldest waiter's ticket. When
// the queue cannot be read, every waiter competes.
func firstInQueue(prefix, ticket string) bool {
	tickets, err := queueTickets(prefix)
	if err != nil {
		return true
	}
	for _, t := range tickets {
		if t < ticket {
			return false
		}
	}
	return true
}

// acquireLock waits (until ctx is done) for the machine-wide lab lock.
func acquireLock(ctx context.Context, logger *slog.Logger) (*machineLock, error) {
	return acquireNamedLock(ctx, logger, LockName, queuePrefix)
}

func acquireNamedLock(ctx context.Context, logger *slog.Logger, lockName, queuePrefix string) (*machineLock, error) {
	addr := &net.UnixAddr{Name: lockName, Net: "unix"}
	ticket := fmt.Sprintf("%s%020d.%d", queuePrefix, time.Now().UnixNano(), os.Getpid())
	if q, err := net.ListenUnix("unix", &net.UnixAddr{Name: ticket, Net: "unix"}); err == nil {
		defer q.Close()
	} else {
		ticket = "" // no ticket: just compete
	}
	logged := false
	for {
		if ticket == "" || firstInQueue(queuePrefix, ticket) {
			ln, err := net.ListenUnix("unix", addr)
			if err == nil {
				return &machineLock{ln: ln}, nil
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("netlab: lock %s: %w", lockName, err)
			}
		}
		if !logged {
			logged = true
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
