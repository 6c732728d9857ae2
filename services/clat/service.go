package clat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/reconcile"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Config is fixed for the life of the service.
type Config struct {
	// WAN is the uplink interface: where translated IPv6 leaves, where
	// clat_in listens, where an address may be claimed.
	WAN    string
	Logger *slog.Logger
}

// Service runs the CLAT: the link, the NAT44 table, the routes and the
// programs, while its plan is enabled.
type Service struct {
	cfg   Config
	log   *slog.Logger
	plans mailbox.Box[Plan]
	k     kernel

	mu      sync.Mutex
	dp      *datapath
	applied Plan
	running bool
	// clean: nothing of the CLAT is in the kernel (stopped, or a crashed
	// run's leftovers removed).
	clean  bool
	errors int
}

// New checks the configuration. Nothing touches the kernel before Run.
func New(cfg Config) (*Service, error) {
	if cfg.WAN == "" {
		return nil, errors.New("clat: no WAN interface")
	}
	return &Service{cfg: cfg, log: svclog.For(cfg.Logger, "clat"), k: kernel{wan: cfg.WAN}}, nil
}

// Update hands the service a new plan; it never blocks and the newest
// plan wins.
func (s *Service) Update(p Plan) { s.plans.Put(p) }

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Running: s.running, Errors: s.errors}
	if s.running {
		st.Address, st.Pref64 = s.applied.Address, s.applied.Pref64.Masked()
	}
	if s.dp != nil {
		var err error
		if st.Counters, err = s.dp.counters(); err != nil {
			s.log.Warn("reading counters", "err", err)
		}
	}
	return st
}

// Run applies plans until ctx is done, then removes everything it made.
// A plan that cannot be applied is retried every 5 s.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		if err := s.stop(); err != nil {
			s.log.Warn("removing the CLAT", "err", err)
		}
		s.mu.Lock()
		if s.dp != nil {
			s.dp.close()
			s.dp = nil
		}
		s.mu.Unlock()
	}()
	reconcile.Run(ctx, &s.plans, 5*time.Second, func(p Plan) error {
		err := s.apply(p)
		if err != nil {
			s.mu.Lock()
			s.errors++
			s.mu.Unlock()
			s.log.Warn("applying the CLAT plan failed; retrying", "err", err)
		}
		return err
	})
	return nil
}

// apply makes the kernel match p. Order matters: the program is attached
// before the route sends IPv4 to clat0, and the route goes first when the
// CLAT stops.
func (s *Service) apply(p Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	// The same plan again is done, unless clat0 went away meanwhile.
	clat0Now := linkIndex(Interface)
	s.mu.Lock()
	same := s.running && reflect.DeepEqual(s.applied, p) && s.dp != nil && clat0Now == s.dp.clat0
	s.mu.Unlock()
	if same {
		return nil
	}
	if !p.Enabled() {
		s.mu.Lock()
		clean := s.clean
		s.mu.Unlock()
		if clean {
			return nil
		}
		return s.stop()
	}
	s.mu.Lock()
	if s.dp == nil {
		dp, err := loadDatapath()
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.dp = dp
	}
	dp := s.dp
	s.clean = false // from here on the kernel holds parts of the CLAT
	s.mu.Unlock()

	clat0, err := s.k.setup(p)
	if err != nil {
		return err
	}
	if err := dp.configure(p, clat0, 0); err != nil {
		return err
	}
	if err := dp.attach(clat0, p.WANIfindex); err != nil {
		return err
	}
	if err := installNAT44(); err != nil {
		return err
	}
	var claim netip.Addr
	if p.ClaimOnWAN {
		claim = p.Address
	}
	if err := s.k.claim(claim); err != nil {
		return err
	}
	if err := s.k.routes(p, clat0); err != nil {
		return err
	}
	s.mu.Lock()
	wasRunning := s.running
	s.applied, s.running, s.clean = p, true, false
	s.mu.Unlock()
	if !wasRunning {
		s.log.Info("CLAT running", "address", p.Address, "pref64", p.Pref64, "ipv4", IPv4, "mtu", p.MTU(), "claimed_on_wan", p.ClaimOnWAN)
	}
	return nil
}

// stop removes the route first, so that no IPv4 goes to clat0 without
// the program, then the rest.
func (s *Service) stop() error {
	s.mu.Lock()
	dp := s.dp
	wasRunning := s.running
	s.running = false
	s.applied = Plan{}
	s.mu.Unlock()
	var errs []error
	if err := syncRoutes(nil); err != nil {
		errs = append(errs, err)
	}
	if dp != nil {
		dp.detach()
		if err := dp.disable(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.k.teardown(); err != nil {
		errs = append(errs, err)
	}
	if err := removeNAT44(); err != nil {
		errs = append(errs, err)
	}
	if wasRunning {
		s.log.Info("CLAT stopped")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clat: stop: %w", err)
	}
	s.mu.Lock()
	s.clean = true
	s.mu.Unlock()
	return nil
}
