package nat64

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/bpfclock"
	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// DefaultPinDir is where the maps are pinned so that sessions survive a
// restart of the daemon.
const DefaultPinDir = "/sys/fs/bpf/gizmo/nat64"

// Config is fixed for the life of the service.
type Config struct {
	// PinDir pins the maps (sessions, bindings, counters) so that a
	// restarted daemon keeps them. Empty: nothing is pinned.
	PinDir string
	// RemoveOnStop unpins the maps when Run returns, leaving nothing
	// behind. The programs are always detached when Run returns.
	RemoveOnStop bool
	// MaxSessions is the session table size (default
	// DefaultMaxSessions). When the table is full, new sessions are
	// refused and counted. The plan's quotas default to shares of it.
	MaxSessions int
	// ReapInterval is how often sessions are expired (default 10 s).
	ReapInterval time.Duration
	Logger       *slog.Logger
	// OnHostRetired gets the final counters of a LAN address whose entry is
	// removed after it went idle, so that the daemon can keep the totals.
	// Must not block.
	OnHostRetired func(HostStats)
}

// Service owns the datapath.
type Service struct {
	cfg     Config
	log     *slog.Logger
	plans   mailbox.Box[Plan]
	mu      sync.Mutex
	dp      *datapath
	static  []StaticBinding
	enabled bool
	// wanPool and lanPool are the applied plan's pools.
	wanPool, lanPool bool
	last             reapResult
}

// New checks the configuration. Nothing touches the kernel before Run.
func New(cfg Config) (*Service, error) {
	if cfg.MaxSessions < 0 {
		return nil, fmt.Errorf("nat64: MaxSessions %d is negative", cfg.MaxSessions)
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = 10 * time.Second
	}
	return &Service{cfg: cfg, log: svclog.For(cfg.Logger, "nat64")}, nil
}

// Update hands the service a new plan; it never blocks and the newest
// plan wins.
func (s *Service) Update(p Plan) { s.plans.Put(p) }

// AddStatic adds a static binding (RFC 6146 §3.5.1). It is kept across
// plan changes and re-applied after a restart of Run.
func (s *Service) AddStatic(b StaticBinding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dp != nil {
		if err := s.dp.addStatic(b); err != nil {
			return err
		}
	}
	s.static = append(s.static, b)
	return nil
}

// RemoveStatic removes a static binding added with AddStatic.
func (s *Service) RemoveStatic(b StaticBinding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.static {
		if x == b {
			s.static = append(s.static[:i], s.static[i+1:]...)
			if s.dp != nil {
				return s.dp.removeStatic(b)
			}
			return nil
		}
	}
	return fmt.Errorf("nat64: static binding %v: not found", b)
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Enabled: s.enabled, ToInternet: s.enabled && s.wanPool, ToLAN: s.enabled && s.lanPool,
		Sessions: s.last.Sessions, Bindings: s.last.Bindings}
	if s.dp == nil {
		return st
	}
	var err error
	if st.Counters, err = s.dp.counters(); err != nil {
		s.log.Warn("reading counters", "err", err)
	}
	if st.Hosts, err = s.dp.hosts(); err != nil {
		s.log.Warn("reading host counters", "err", err)
	}
	return st
}

// Run loads the programs, applies plans as they come and expires sessions
// until ctx is done; then it detaches everything.
func (s *Service) Run(ctx context.Context) error {
	pin := s.cfg.PinDir
	if pin != "" {
		if err := ensureBPFFS(); err != nil {
			s.log.Warn("bpffs unavailable, sessions will not survive a restart", "err", err)
			pin = ""
		}
	}
	dp, err := loadDatapath(pin, s.cfg.MaxSessions)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.dp = dp
	for _, b := range s.static {
		if err := dp.addStatic(b); err != nil {
			s.log.Warn("static binding", "binding", b, "err", err)
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := dp.close(s.cfg.RemoveOnStop); err != nil {
			s.log.Warn("closing datapath", "err", err)
		}
		s.dp = nil
		s.enabled = false
	}()

	tick := time.NewTicker(s.cfg.ReapInterval)
	defer tick.Stop()
	idle := map[netip.Addr]uint64{}
	hostRound := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.plans.C():
			p, ok := s.plans.Take()
			if !ok {
				continue
			}
			if err := s.apply(p); err != nil {
				s.log.Error("applying plan", "err", err)
			}
		case <-tick.C:
			// Map operations are safe beside the datapath and beside
			// Stats, so the pass runs without the lock: a long pass
			// (a mass expiry) never blocks the dashboard.
			// A pass that reports an error has still done all it
			// could (reap), so its counts stand, unless it could not
			// even read the sessions.
			// The programs stamp sessions with bpf_ktime_get_coarse_ns
			// (now_ns in bpf/maps.h).
			res, err := dp.reap(bpfclock.Monotonic())
			if !errors.Is(err, errSessionScan) {
				s.mu.Lock()
				s.last = res
				s.mu.Unlock()
			}
			if res.OrphanPorts > 0 {
				s.log.Info("freed pool ports without a binding", "ports", res.OrphanPorts)
			}
			var gone []HostStats
			// Idle hosts are looked at about every ten minutes.
			hostRound++
			if hostRound*int(s.cfg.ReapInterval) >= int(10*time.Minute) {
				hostRound = 0
				gone, _ = dp.retireHosts(idle)
			}
			if err != nil {
				s.log.Warn("reaping sessions", "err", err)
			}
			for _, h := range gone {
				if s.cfg.OnHostRetired != nil {
					s.cfg.OnHostRetired(h)
				}
			}
		}
	}
}

func (s *Service) apply(p Plan) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.Enabled() {
		// Translation off: the programs stay attached and pass
		// everything (pool 0), so that the next plan is one update.
		if err := s.dp.disable(); err != nil {
			return err
		}
		s.enabled = false
		return nil
	}
	if err := s.dp.configure(p, 0, 0); err != nil {
		return err
	}
	if err := s.dp.attach(p.LANIfindex, p.WANIfindex, p.LANLegacy.Enabled()); err != nil {
		return err
	}
	s.enabled = true
	s.wanPool, s.lanPool = p.Pool4.IsValid(), p.LANLegacy.Enabled()
	s.log.Info("plan applied", "pool", p.Pool4, "pref64", p.Pref64, "lan_prefixes", p.LANPrefixes,
		"lan_ifindex", p.LANIfindex, "wan_ifindex", p.WANIfindex,
		"lan_pool", p.LANLegacy.Addr4, "lan_pool_prefix", p.LANLegacy.Prefix, "lan_refused", len(p.LANLegacy.Refused))
	return nil
}

// ensureBPFFS mounts the BPF filesystem at /sys/fs/bpf when it is not
// there (gokrazy does not mount it; neither does `ip netns exec`).
func ensureBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs: %w", err)
	}
	return nil
}
