package dslite

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Config is fixed for the life of the service.
type Config struct {
	Logger *slog.Logger
	// OnAFTR gets the AFTR's address each time it changes: resolved from
	// the plan's AFTRName, or invalid when there is no name any more.
	// A lookup that fails keeps the last address: an AFTR rarely moves,
	// and a resolver's hiccup must not take the line's IPv4 down. Must
	// not block.
	OnAFTR func(name string, addr netip.Addr)

	// lookup replaces DNS in tests.
	lookup lookupFunc
}

// Service resolves the AFTR's name and runs the B4.
type Service struct {
	cfg   Config
	log   *slog.Logger
	plans mailbox.Box[Plan]

	mu    sync.Mutex
	dp    *datapath
	stats Stats
}

// Stats is a snapshot for the dashboard and /metrics.
type Stats struct {
	// Running: the softwire is up, between B4 and AFTR.
	Running  bool
	AFTRName string
	AFTR, B4 netip.Addr
	// MTU4 is the softwire's IPv4 MTU.
	MTU4 int
	// Lookups and LookupFailures count the resolutions of AFTRName.
	Lookups, LookupFailures uint64
	// Counters are the datapath's, keyed by CounterNames; nil before
	// the programs were first loaded.
	Counters map[string]uint64
}

// New checks the configuration. Nothing touches the kernel before Run.
func New(cfg Config) (*Service, error) {
	if cfg.lookup == nil {
		cfg.lookup = lookupAAAA
	}
	return &Service{cfg: cfg, log: svclog.For(cfg.Logger, "dslite")}, nil
}

// Update hands the service a new plan; it never blocks and the newest
// plan wins.
func (s *Service) Update(p Plan) { s.plans.Put(p) }

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	if s.dp != nil {
		var err error
		if st.Counters, err = s.dp.counters(); err != nil {
			s.log.Warn("reading counters", "err", err)
		}
	}
	return st
}

// resolution is the state of the AFTR name's lookups.
type resolution struct {
	name      string
	resolvers []netip.AddrPort
	addr      netip.Addr
	failures  int
	next      time.Time // zero: nothing to look up
}

// Run resolves the AFTR and applies plans until ctx is done; then it
// removes the softwire and detaches the programs.
func (s *Service) Run(ctx context.Context) error {
	var (
		res     resolution
		applied Softwire
	)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if applied.Enabled() {
			if err := removeKernel(applied.Ifindex); err != nil {
				s.log.Warn("removing the softwire", "err", err)
			}
		}
		if s.dp != nil {
			if err := s.dp.close(); err != nil {
				s.log.Warn("closing datapath", "err", err)
			}
			s.dp = nil
		}
		s.stats.Running = false
	}()
	for {
		if !res.next.IsZero() {
			timer.Reset(max(time.Until(res.next), 0))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.plans.C():
			p, ok := s.plans.Take()
			if !ok {
				continue
			}
			s.plan(&res, p)
			if p.Softwire != applied {
				if err := s.apply(applied, p.Softwire); err != nil {
					s.log.Error("applying the softwire", "err", err)
					// The next plan tries again from a clean slate.
					applied = Softwire{}
					continue
				}
				applied = p.Softwire
			}
		case <-timer.C:
			if !res.next.IsZero() && !time.Now().Before(res.next) {
				s.resolve(ctx, &res)
			}
		}
	}
}

// plan takes a plan's name and resolvers: a new name is looked up at once,
// and a name gone is reported gone.
func (s *Service) plan(res *resolution, p Plan) {
	if p.AFTRName == res.name && slices.Equal(p.Resolvers, res.resolvers) {
		return
	}
	nameChanged := p.AFTRName != res.name
	res.name, res.resolvers = p.AFTRName, slices.Clone(p.Resolvers)
	s.mu.Lock()
	s.stats.AFTRName = p.AFTRName
	s.mu.Unlock()
	if p.AFTRName == "" {
		res.next = time.Time{}
		if res.addr.IsValid() {
			res.addr = netip.Addr{}
			s.report("", netip.Addr{})
		}
		return
	}
	if nameChanged || !res.addr.IsValid() {
		res.failures = 0
		res.next = time.Now()
	}
}

// resolve looks the name up once and schedules the next lookup.
func (s *Service) resolve(ctx context.Context, res *resolution) {
	lctx, cancel := context.WithTimeout(ctx, time.Duration(max(len(res.resolvers), 1))*queryTimeout+time.Second)
	a, ttl, err := s.cfg.lookup(lctx, res.name, res.resolvers)
	cancel()
	s.mu.Lock()
	s.stats.Lookups++
	if err != nil {
		s.stats.LookupFailures++
	}
	s.mu.Unlock()
	if err != nil {
		res.failures++
		res.next = time.Now().Add(retryAfter(res.failures))
		s.log.Warn("resolving the AFTR", "name", res.name, "err", err, "retry_in", retryAfter(res.failures))
		return
	}
	res.failures = 0
	res.next = time.Now().Add(recheckAfter(ttl))
	if a != res.addr {
		s.log.Info("AFTR resolved", "name", res.name, "addr", a, "ttl", ttl)
		res.addr = a
		s.report(res.name, a)
	}
}

func (s *Service) report(name string, a netip.Addr) {
	if s.cfg.OnAFTR != nil {
		s.cfg.OnAFTR(name, a)
	}
}

// apply moves from the softwire old to sw: the programs' configuration
// first (so that no packet is encapsulated towards the old AFTR once the
// route is gone), then the kernel's address and route.
func (s *Service) apply(old, sw Softwire) error {
	if err := sw.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !sw.Enabled() {
		if s.dp != nil {
			if err := s.dp.disable(); err != nil {
				return err
			}
			s.dp.detach()
		}
		s.stats.Running, s.stats.AFTR, s.stats.B4, s.stats.MTU4 = false, netip.Addr{}, netip.Addr{}, 0
		if old.Enabled() {
			s.log.Info("softwire off")
			return removeKernel(old.Ifindex)
		}
		return nil
	}
	if s.dp == nil {
		dp, err := loadDatapath()
		if err != nil {
			return err
		}
		s.dp = dp
	}
	if err := s.dp.configure(configOf(sw)); err != nil {
		return err
	}
	if err := s.dp.attach(sw.Ifindex); err != nil {
		return err
	}
	if old.Enabled() && old.Ifindex != sw.Ifindex {
		if err := removeKernel(old.Ifindex); err != nil {
			s.log.Warn("removing the old softwire", "err", err)
		}
	}
	if err := installKernel(sw); err != nil {
		return fmt.Errorf("%w (the programs are attached; the next plan retries)", err)
	}
	s.stats.Running, s.stats.AFTR, s.stats.B4, s.stats.MTU4 = true, sw.AFTR, sw.B4, sw.MTU4()
	s.log.Info("softwire up", "aftr", sw.AFTR, "b4", sw.B4, "interface", sw.Interface, "mtu4", sw.MTU4())
	return nil
}
