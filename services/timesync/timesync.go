// Package timesync keeps the gizmo's clock right and serves it to the LAN.
//
// A Raspberry Pi has no real-time clock: without this service every boot
// starts at the image's build time, and every lifetime, log line and
// certificate check is wrong. The service
//
//   - restores the time saved in its state directory at start (a board never
//     starts earlier than the time it last saved) and saves it every 10
//     minutes and at shutdown;
//   - queries the NTP servers of its Plan (from DHCPv6 option 56/31 and
//     DHCPv4 option 42, else a public pool by name) with SNTP (RFC 4330),
//     keeps the best valid sample, steps the clock at the first sync and
//     slews it afterwards, stepping only offsets beyond 0.5 s;
//   - answers NTP client requests (RFC 5905 §9.2) on the LAN addresses of
//     its Plan, with stratum 16 and leap 3 until it is synchronised, so
//     that LAN clients never trust an unsynchronised gizmo.
//
// Synced tells other services whether wall-clock times can be trusted: a
// lease saved with absolute deadlines before a reboot is only as good as
// the clock it is compared with.
package timesync

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/beevik/ntp"

	"codeberg.org/monostack/gizmo/internal/guarded"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// DefaultPool is the public pool to use when no DHCP server names an NTP
// server.
const DefaultPool = "pool.ntp.org"

// Config is fixed for the life of the service.
type Config struct {
	// StateDir holds the saved time (ClockFile); empty: nothing is saved.
	StateDir string
	// Interface, if set, is the only interface the server answers on
	// (SO_BINDTODEVICE): the LAN. The addresses of Plan.Serve already keep
	// it off the WAN; this makes sure of it.
	Interface string
	// Clock is the clock to read and set; nil means the system clock.
	Clock  Clock
	Logger *slog.Logger
	// Resolver resolves Plan.Names; nil means net.DefaultResolver (the
	// system resolver).
	Resolver *net.Resolver
	// OnSync is called after every accepted sample with the server it
	// came from (as Stats.Source) and the time of the sync, so that the
	// daemon can show it. It must not block.
	OnSync func(source string, at time.Time)

	// dial replaces the UDP dialer of NTP queries in tests (to reach into
	// a network namespace).
	dial func(local, remote string) (net.Conn, error)
	// query replaces the whole NTP exchange in tests.
	query func(ctx context.Context, server netip.Addr) (*ntp.Response, error)
}

// Plan is what the daemon wants: where to get the time and where to serve
// it.
type Plan struct {
	// Servers are upstream NTP servers by address, in order of preference:
	// DHCPv6 OPTION_NTP_SERVER (RFC 5908) and OPTION_SNTP_SERVERS
	// (RFC 4075), DHCPv4 option 42 (RFC 2132 §8.3).
	Servers []netip.Addr
	// Names are upstream servers by name, resolved with Config.Resolver:
	// the FQDN suboption of RFC 5908, or DefaultPool.
	Names []string
	// Serve are the local addresses to answer NTP clients on: the LAN's
	// ULA router address and the legacy IPv4 address. Never a WAN address.
	Serve []netip.Addr
}

func (p Plan) clone() Plan {
	return Plan{Servers: slices.Clone(p.Servers), Names: slices.Clone(p.Names), Serve: slices.Clone(p.Serve)}
}

// sameUpstream reports whether p and q name the same upstream servers.
func (p Plan) sameUpstream(q Plan) bool {
	return slices.Equal(p.Servers, q.Servers) && slices.Equal(p.Names, q.Names)
}

// Stats are the service's state and counters, for the dashboard and
// /metrics.
type Stats struct {
	Synced bool
	// Source is the server of the last accepted sample.
	Source   string
	LastSync time.Time
	// Offset is the last accepted sample's clock offset; Stratum the
	// stratum the gizmo serves (16 while unsynchronised).
	Offset  time.Duration
	Stratum uint8
	Poll    time.Duration
	// Restored is how far the clock was stepped forward to the saved time
	// at start (0: not at all).
	Restored time.Duration

	Steps, Slews, Ignored uint64
	Queries, QueryErrors  uint64
	// Rejected counts responses that failed validation, by reason (the
	// Reject* constants).
	Rejected map[string]uint64
	// Skipped counts candidate servers (addresses and names) beyond the
	// per-round bounds.
	Skipped       uint64
	ResolveErrors uint64
	ClockErrors   uint64
	SaveErrors    uint64

	Server ServerStats
}

// ServerStats are the NTP server's counters.
type ServerStats struct {
	Listening []netip.Addr
	Requests  uint64
	Replies   uint64
	// Dropped counts requests left unanswered, by reason (the Drop*
	// constants).
	Dropped      map[string]uint64
	ListenErrors uint64
}

func cloneStats(s Stats) Stats {
	s.Rejected = maps.Clone(s.Rejected)
	s.Server.Dropped = maps.Clone(s.Server.Dropped)
	s.Server.Listening = slices.Clone(s.Server.Listening)
	return s
}

// Service is the time service. Create it with New.
type Service struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	stats guarded.Stats[Stats]

	planMu sync.Mutex
	plan   Plan
	// planCh wakes the poller, serverKick the server, on Update.
	planCh     chan struct{}
	serverKick chan struct{}

	// mu guards the synchronisation state, which the poller writes and
	// the server and Synced read.
	mu    sync.Mutex
	up    upstream
	ever  bool // synchronised at least once in this run
	lim   *limiter
	kiss  map[netip.Addr]bool // servers that sent DENY or RSTR (RFC 5905 §7.4)
	saved time.Time           // the last time written to ClockFile

	restoreOnce sync.Once
}

// New returns the service; Run starts it.
func New(cfg Config) (*Service, error) {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.OnSync == nil {
		cfg.OnSync = func(string, time.Time) {}
	}
	s := &Service{
		cfg:        cfg,
		log:        svclog.For(cfg.Logger, "timesync"),
		clock:      cfg.Clock,
		planCh:     make(chan struct{}, 1),
		serverKick: make(chan struct{}, 1),
		lim:        newLimiter(),
		kiss:       map[netip.Addr]bool{},
	}
	s.stats.Clone = cloneStats
	s.stats.Add(func(st *Stats) {
		st.Stratum = maxStratum
		st.Rejected = map[string]uint64{}
		st.Server.Dropped = map[string]uint64{}
	})
	return s, nil
}

// Update hands the service a new plan; the newest wins. It does not block.
func (s *Service) Update(p Plan) {
	s.planMu.Lock()
	s.plan = p.clone()
	s.planMu.Unlock()
	for _, ch := range []chan struct{}{s.planCh, s.serverKick} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Service) currentPlan() Plan {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	return s.plan.clone()
}

// Stats returns a snapshot of the counters and the state.
func (s *Service) Stats() Stats { return s.stats.Snapshot() }

// Synced reports whether the clock has been synchronised with NTP in this
// run, from which server, and when last. Only then can a wall-clock time
// saved before the restart be compared with the clock: the saved time the
// clock was restored from is a lower bound, never proof of the real time.
func (s *Service) Synced() (ok bool, source string, last time.Time) {
	st := s.stats.Snapshot()
	return st.Synced, st.Source, st.LastSync
}

// Restore steps the clock forward to the saved time if it is behind it.
// Run does it first; a daemon may call it before it starts the services
// that compare stored times with the clock. Only the first call acts.
func (s *Service) Restore() { s.restoreOnce.Do(s.restore) }

// Run restores the saved time, then keeps the clock synchronised and
// serves it until ctx is done; it saves the time on the way out.
func (s *Service) Run(ctx context.Context) error {
	s.Restore()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.poll(ctx)
	}()
	go func() {
		defer wg.Done()
		s.serve(ctx)
	}()
	t := time.NewTicker(saveInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
			s.save()
		}
	}
	wg.Wait()
	s.save()
	return nil
}

// restore steps the clock forward to the saved time if it is behind it.
func (s *Service) restore() {
	if s.cfg.StateDir == "" {
		return
	}
	saved, err := loadSaved(s.cfg.StateDir)
	if err != nil {
		s.log.Error("timesync: ignoring the saved time", "err", err)
		return
	}
	s.mu.Lock()
	s.saved = saved
	s.mu.Unlock()
	now := s.clock.Now()
	d := restoreStep(now, saved)
	if d == 0 {
		return
	}
	if err := s.clock.Step(d); err != nil {
		s.stats.Add(func(st *Stats) { st.ClockErrors++ })
		s.log.Error("timesync: cannot restore the saved time", "saved", saved, "err", err)
		return
	}
	s.stats.Add(func(st *Stats) { st.Restored = d })
	s.log.Info("timesync: clock was behind the saved time, stepped forward", "from", now.Round(0), "to", saved, "by", d.Round(time.Second))
}

// save writes the time to ClockFile.
func (s *Service) save() {
	if s.cfg.StateDir == "" {
		return
	}
	s.mu.Lock()
	synced, saved := s.ever, s.saved
	s.mu.Unlock()
	t := nextSave(s.clock.Now(), saved, synced)
	if err := storeSaved(s.cfg.StateDir, t, synced); err != nil {
		s.stats.Add(func(st *Stats) { st.SaveErrors++ })
		s.log.Error("timesync: save the time", "err", err)
		return
	}
	s.mu.Lock()
	s.saved = t
	s.mu.Unlock()
}

// serverUpstream is what the server says about its synchronisation at now:
// synchronised for holdover after the last sync, with the dispersion
// growing by the clock's assumed frequency tolerance (RFC 5905 §11.2:
// PHI, 15 ppm).
func (s *Service) serverUpstream(now time.Time) upstream {
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	if !up.synced {
		return up
	}
	since := now.Sub(up.refTime)
	if since > holdover || since < -holdover {
		up.synced = false
		return up
	}
	up.rootDispersion += time.Duration(float64(since.Abs()) * phi)
	return up
}

// holdover is how long the server vouches for its clock without a sync; a
// cheap crystal's 50 ppm drift is 4.3 s a day, which the growing root
// dispersion tells clients about.
const (
	holdover = 24 * time.Hour
	phi      = 15e-6
)

var errNoServers = errors.New("timesync: no NTP server in the plan")
