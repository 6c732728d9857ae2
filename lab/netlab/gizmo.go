package netlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"codeberg.org/monostack/gizmo/services/dhcp6pd"
)

// restartDelay is gokrazy's: a service that exits is restarted after 1s.
const restartDelay = time.Second

// supervisor runs the gizmo daemon in gz-gizmo as gokrazy would: restart one
// second after any exit that was not requested, same state dir throughout.
type supervisor struct {
	l      *Lab
	ns     string // NSGizmo; empty in unit tests
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	want    bool     // the gizmo should be running
	cur     *process // running instance, nil if none
	stopped *process // the instance whose exit was requested
	starts  int
	crashes int
}

func newSupervisor(l *Lab) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	return &supervisor{l: l, ns: NSGizmo, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}), want: true}
}

// GizmoStateDir is the gizmo's -state-dir; it survives restarts.
func (l *Lab) GizmoStateDir() string { return filepath.Join(l.runDir, "gizmo-state") }

// PDLease reads the lease the gizmo's DHCPv6-PD client persisted in its
// state dir; false while there is none (or only a torn or empty one).
func (l *Lab) PDLease() (dhcp6pd.Lease, bool) {
	b, err := os.ReadFile(filepath.Join(l.GizmoStateDir(), "dhcp6pd", "dhcp6pd-lease.json"))
	if err != nil {
		return dhcp6pd.Lease{}, false
	}
	var le dhcp6pd.Lease
	if json.Unmarshal(b, &le) != nil || !le.Prefix.IsValid() {
		return dhcp6pd.Lease{}, false
	}
	return le, true
}

func (l *Lab) gizmoBinary() string {
	if l.opts.GizmoBinary != "" {
		return l.opts.GizmoBinary
	}
	return filepath.Join(l.runDir, "gizmo")
}

// GizmoArgv is the command line the lab runs the gizmo with. The
// namespaces share the host's clock, which the gizmo must never set: it
// measures it against the ISP's NTP server and serves it (-set-clock=false).
func (l *Lab) GizmoArgv() []string {
	return l.scenario.gizmoArgv(append([]string{l.gizmoBinary(),
		"-state-dir", l.GizmoStateDir(),
		"-wan", GizmoWAN,
		"-lan", GizmoLAN,
		"-pref64", Pref64.String(),
		"-lan-ipv4", GizmoLANIPv4.String(),
		"-listen-web", "[::]:80",
		"-set-clock=false",
	}, l.opts.GizmoArgs...))
}

func (s *supervisor) start(ctx context.Context) error {
	if err := os.MkdirAll(s.l.GizmoStateDir(), 0o755); err != nil {
		return fmt.Errorf("netlab: gizmo state dir: %w", err)
	}
	go s.run()
	return s.waitStarts(ctx, 1)
}

func (s *supervisor) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *supervisor) run() {
	defer close(s.done)
	log := s.l.logger.With("proc", "gizmo")
	for {
		s.mu.Lock()
		want := s.want
		s.mu.Unlock()
		if !want {
			select {
			case <-s.ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		p, err := s.l.spawn("gizmo", s.ns, s.l.LogPath("gizmo"), s.l.GizmoArgv())
		if err != nil {
			log.Error("cannot start the gizmo", "err", err)
		} else {
			s.mu.Lock()
			s.cur = p
			s.starts++
			if !s.want {
				// GizmoStop ran while this instance was being spawned.
				s.stopped = p
				s.mu.Unlock()
				_ = p.stop(10 * time.Second)
			} else {
				s.mu.Unlock()
			}
			select {
			case <-p.done:
			case <-s.ctx.Done():
				_ = p.stop(5 * time.Second)
			}
			s.mu.Lock()
			s.cur = nil
			requested := s.stopped == p || s.ctx.Err() != nil
			if !requested {
				s.crashes++
			}
			s.mu.Unlock()
			if requested {
				continue
			}
			log.Warn("gizmo exited; restarting in 1s", "err", p.waitErr)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(restartDelay):
		}
	}
}

func (s *supervisor) waitStarts(ctx context.Context, n int) error {
	return WaitFor(ctx, "the gizmo to start", func(context.Context) (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.starts >= n && s.cur != nil, nil
	})
}

// stop stops the running instance and keeps it stopped.
func (s *supervisor) stop() error {
	s.mu.Lock()
	s.want = false
	p := s.cur
	s.stopped = p
	s.mu.Unlock()
	s.poke()
	if p == nil {
		return nil
	}
	// SIGTERM: the daemon sends its final RA (router lifetime 0) and exits.
	if err := p.stop(10 * time.Second); err != nil {
		return err
	}
	// It has exited: say so at once rather than when the loop next runs,
	// so that a stop returns with no gizmo running.
	s.mu.Lock()
	if s.cur == p {
		s.cur = nil
	}
	s.mu.Unlock()
	return nil
}

func (s *supervisor) shutdown() error {
	err := s.stop()
	s.cancel()
	<-s.done
	return err
}

func (l *Lab) sup() (*supervisor, error) {
	if l.gizmo == nil {
		return nil, errors.New("netlab: the lab runs without the gizmo (Options.NoGizmo)")
	}
	return l.gizmo, nil
}

// GizmoStop stops the gizmo with SIGTERM (SIGKILL after 10s) and keeps it
// stopped until GizmoStart.
func (l *Lab) GizmoStop() error {
	s, err := l.sup()
	if err != nil {
		return err
	}
	return s.stop()
}

// GizmoStart starts a stopped gizmo and waits until its process runs.
func (l *Lab) GizmoStart(ctx context.Context) error {
	s, err := l.sup()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.want {
		s.mu.Unlock()
		return nil
	}
	s.want = true
	n := s.starts + 1
	s.mu.Unlock()
	s.poke()
	return s.waitStarts(ctx, n)
}

// GizmoRestart is GizmoStop then GizmoStart: a requested restart with the
// same state dir.
func (l *Lab) GizmoRestart(ctx context.Context) error {
	if err := l.GizmoStop(); err != nil {
		return err
	}
	return l.GizmoStart(ctx)
}

// GizmoSignal sends sig to the running gizmo. The exit that may follow was
// not requested, so the supervisor restarts the gizmo one second later.
func (l *Lab) GizmoSignal(sig syscall.Signal) error {
	s, err := l.sup()
	if err != nil {
		return err
	}
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return errors.New("netlab: the gizmo is not running")
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("netlab: signal gizmo: %w", err)
	}
	return nil
}

// GizmoKill SIGKILLs the gizmo, like a crash; it comes back after 1s.
func (l *Lab) GizmoKill() error { return l.GizmoSignal(syscall.SIGKILL) }

// GizmoPID returns the running gizmo's pid, or 0.
func (l *Lab) GizmoPID() int {
	if l.gizmo == nil {
		return 0
	}
	l.gizmo.mu.Lock()
	defer l.gizmo.mu.Unlock()
	if l.gizmo.cur == nil {
		return 0
	}
	return l.gizmo.cur.cmd.Process.Pid
}

// GizmoStarts counts how often the gizmo was started, and how often it
// exited without being asked to (crashes and signals).
func (l *Lab) GizmoStarts() (starts, unrequestedExits int) {
	if l.gizmo == nil {
		return 0, 0
	}
	l.gizmo.mu.Lock()
	defer l.gizmo.mu.Unlock()
	return l.gizmo.starts, l.gizmo.crashes
}

// WaitGizmoStarts waits until the gizmo has been started at least n times
// in total and is running (for example n = starts+1 after GizmoKill).
func (l *Lab) WaitGizmoStarts(ctx context.Context, n int) error {
	s, err := l.sup()
	if err != nil {
		return err
	}
	return s.waitStarts(ctx, n)
}

// GizmoLog returns the gizmo's output so far (all runs, appended).
func (l *Lab) GizmoLog() ([]byte, error) {
	b, err := os.ReadFile(l.LogPath("gizmo"))
	if err != nil {
		return nil, fmt.Errorf("netlab: gizmo log: %w", err)
	}
	return b, nil
}
