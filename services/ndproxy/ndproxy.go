// Package ndproxy shares the upstream's /64 with the LAN when there is no
// prefix delegation (RFC 7278 §4.3, in the manner of RFC 4389): the LAN
// hosts autoconfigure addresses in the /64 that the gizmo advertises
// off-link, and the gizmo answers the upstream's Neighbor Solicitations
// for those addresses on the uplink and routes them to the LAN.
//
// The answering is left to the kernel: proxy_ndp on the uplink, one proxy
// neighbour entry (NTF_PROXY) per LAN host address and a /128 route via
// the LAN, all through netlink. The kernel then also defends the proxied
// addresses against DAD from the WAN side (RFC 4862 §5.4.3) and answers
// unicast NUD probes. The service learns the LAN host addresses itself
// (DAD NS from ::, NS and NA on the LAN, the LAN neighbour table, and a
// LAN lookup when the upstream, or the gizmo itself on the uplink,
// solicits an address it does not know) and from the daemon's host
// sightings in the plan. All of that is a claim, which anyone on the LAN
// can make for any address: a claimed address is proxied at once, so
// that a host's first packets get through, but only for UnprovenMaxAge
// unless the host answers the gizmo's own NS for it (its neighbour entry
// becomes REACHABLE); a full table forgets unproven claims first. An
// address is withdrawn when its neighbour entry on the LAN fails, when
// no proof arrived for MaxAge, or when the prefix goes. Run leaves
// nothing behind.
package ndproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"

	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Plan is what the daemon wants shared (gizmo/plan.NDProxy).
type Plan struct {
	// Prefix is the upstream /64 shared with the LAN; the zero value
	// shares nothing and removes every proxy entry.
	Prefix netip.Prefix
	// Own are the gizmo's own addresses in Prefix (its WAN SLAAC
	// addresses): the kernel answers for them itself; never proxied.
	Own []netip.Addr
	// Hosts are LAN host addresses in Prefix the daemon saw, and when.
	Hosts []Sighting
}

// Sighting is one address seen in use by a LAN host at a time.
type Sighting struct {
	Addr netip.Addr
	At   time.Time
}

// Config configures the service.
type Config struct {
	// WAN is the uplink, where the upstream's NS are answered (uplink0);
	// LAN is where the hosts live (lan0).
	WAN, LAN string
	Logger   *slog.Logger
	// VerifyInterval is how often every proxied address is checked on the
	// LAN (default 30 s).
	VerifyInterval time.Duration
	// MaxAge is how long an address stays proxied after the last proof
	// that a host holds it (the host answered the gizmo's NS; default 10
	// min). Sightings in a plan that are older are ignored.
	MaxAge time.Duration
	// UnprovenMaxAge is how long an address a host only claimed (a DAD
	// probe, an NS or NA, a sighting) stays proxied without proof
	// (default 30 s): long enough for the host to finish DAD (RFC 4862
	// §5.4, 1 s by default) and answer the gizmo's probe, short enough
	// that claims nobody backs leave the table soon.
	UnprovenMaxAge time.Duration
	// MaxAddrs bounds the addresses the service tracks (default 1024), so
	// that a LAN host inventing addresses cannot exhaust memory or the
	// kernel's tables.
	MaxAddrs int
	// ProcSys is where the sysctls are (default /proc/sys).
	ProcSys string
}

// Stats are the service's counters for the dashboard and /metrics.
type Stats struct {
	// Prefix is the shared /64, invalid when sharing is off.
	Prefix netip.Prefix
	// Proxied are the LAN host addresses proxied now, Proxying how many
	// (for the dashboard's numeric counters).
	Proxied  []netip.Addr
	Proxying int
	// Learned counts addresses that became known (DAD, ND, neighbours,
	// sightings); DADSeen the DAD probes heard on the LAN.
	Learned, DADSeen uint64
	// Unproven is how many known addresses have claims but no proof now;
	// Proven counts addresses whose host answered the gizmo's NS (RFC
	// 4861 §7.3.1) for the first time. UnprovenExpired counts claims
	// withdrawn without proof (nobody answered the gizmo's NS, or
	// UnprovenMaxAge passed), UnprovenEvicted those forgotten to make
	// room for a new one in a full table.
	Unproven                                 int
	Proven, UnprovenExpired, UnprovenEvicted uint64
	// Added and Removed count proxy entries installed and withdrawn.
	Added, Removed uint64
	// Failed counts proven addresses withdrawn because the LAN host
	// stopped answering; Expired those without proof for MaxAge.
	Failed, Expired uint64
	// Conflicts counts addresses not proxied because a WAN-side
	// neighbour holds them.
	Conflicts uint64
	// Lookups counts LAN probes for an address the upstream (or the
	// gizmo itself, on the uplink) solicited that the proxy did not know
	// yet (RFC 4389 §4.1.3.1).
	Lookups uint64
	// NSAnswered counts the upstream's NS for a proxied address (the
	// kernel answers them); NSIgnored those for other addresses in the
	// shared /64; DADDefended the upstream's DAD probes for a proxied one.
	NSAnswered, NSIgnored, DADDefended uint64
	// Resyncs counts re-subscriptions to the kernel's neighbour changes
	// after its queue overflowed, each followed by a read of the table.
	Resyncs uint64
	// Malformed counts ND packets that failed the RFC 4861 §7.1 checks;
	// Dropped evidence the table had no room for or the loop (or the
	// kernel's socket queues) no time for.
	Malformed, Dropped uint64
	// Errors counts failed kernel operations.
	Errors uint64
}

// Service runs the ND proxy.
type Service struct {
	cfg   Config
	log   *slog.Logger
	plans mailbox.Box[Plan]

	mu    sync.Mutex
	stats Stats
}

// New checks cfg and returns a service.
func New(cfg Config) (*Service, error) {
	if cfg.WAN == "" || cfg.LAN == "" || cfg.WAN == cfg.LAN {
		return nil, fmt.Errorf("ndproxy: need two distinct interfaces, got WAN %q and LAN %q", cfg.WAN, cfg.LAN)
	}
	if cfg.VerifyInterval <= 0 {
		cfg.VerifyInterval = 30 * time.Second
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 10 * time.Minute
	}
	if cfg.UnprovenMaxAge <= 0 {
		cfg.UnprovenMaxAge = 30 * time.Second
	}
	if cfg.MaxAddrs <= 0 {
		cfg.MaxAddrs = 1024
	}
	if cfg.ProcSys == "" {
		cfg.ProcSys = "/proc/sys"
	}
	return &Service{cfg: cfg, log: svclog.For(cfg.Logger, "ndproxy", "wan", cfg.WAN, "lan", cfg.LAN)}, nil
}

// Update hands the service a new plan; it never blocks and the newest plan
// wins.
func (s *Service) Update(p Plan) { s.plans.Put(p) }

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Proxied = slices.Clone(s.stats.Proxied)
	return st
}

func (s *Service) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// heard is an ND message from one side; own: sent by the gizmo itself.
type heard struct {
	wan, own bool
	ev       ndEvent
}

// Run proxies until ctx is done. It touches nothing while no prefix is
// shared: proxy_ndp and the snooping sockets come with the first shared
// prefix and go with the last proxied address. On return no proxy entry,
// no route of the service and no sysctl change is left.
func (s *Service) Run(ctx context.Context) (err error) {
	k, err := openKernel(s.cfg.WAN, s.cfg.LAN, s.cfg.ProcSys)
	if err != nil {
		return err
	}
	if err := k.flush(); err != nil {
		s.log.Warn("removing a predecessor's proxy entries was incomplete", "err", err)
	}
	r := &runState{s: s, k: k, tab: newTable(s.cfg.MaxAddrs, s.cfg.MaxAge, s.cfg.UnprovenMaxAge), installed: map[netip.Addr]bool{}, proven: map[netip.Addr]bool{}, conflicted: map[netip.Addr]bool{},
		lookedUp: map[netip.Addr]time.Time{}, probeAt: map[netip.Addr]time.Time{}, events: make(chan heard, 256)}
	defer func() {
		err = errors.Join(err, r.stop())
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	neigh, unsubscribe, err := s.subscribeNeighbours(ctx)
	if err != nil {
		return err
	}
	defer func() { unsubscribe() }()

	tick := time.NewTicker(s.cfg.VerifyInterval)
	defer tick.Stop()
	// Claims are probed and expire within seconds, not at the pace of
	// the verification of proven hosts.
	claims := time.NewTicker(time.Second)
	defer claims.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.plans.C():
			if p, ok := s.plans.Take(); ok {
				r.setPlan(p, time.Now())
			}
		case h := <-r.events:
			// A flood of ND messages is taken in batches, so that the
			// kernel is reconciled once per batch, not once per message.
			now := time.Now()
			r.heard(h, now)
			for more := true; more; {
				select {
				case h := <-r.events:
					r.heard(h, now)
				default:
					more = false
				}
			}
		case u, ok := <-neigh:
			if !ok {
				// The kernel's changes outran the queue (ENOBUFS, a
				// flood of probes): subscribe again and read the table,
				// rather than start over and drop what is proxied.
				unsubscribe()
				if neigh, unsubscribe, err = s.subscribeNeighbours(ctx); err != nil {
					return err
				}
				s.count(func(st *Stats) { st.Resyncs++ })
				r.verify(time.Now())
				break
			}
			r.neighbour(u, time.Now())
		case <-tick.C:
			r.verify(time.Now())
		case <-claims.C:
			r.checkClaims(time.Now())
		}
		// On before proxy entries are added, off once the last is gone.
		if err := r.setActive(ctx, r.plan.Prefix.IsValid() || len(r.installed) > 0); err != nil {
			return err
		}
		r.reconcile(time.Now())
		if err := r.setActive(ctx, r.plan.Prefix.IsValid() || len(r.installed) > 0); err != nil {
			return err
		}
	}
}

// neighbourQueue is the kernel-side queue of the neighbour subscription:
// room for the events of a few thousand probes (each entry goes
// INCOMPLETE, then REACHABLE or FAILED). FORCE needs CAP_NET_ADMIN, which
// the gizmo has; without it rmem_max applies.
const neighbourQueue = 4 << 20

// subscribeNeighbours follows the kernel's neighbour changes; unsubscribe
// ends it.
func (s *Service) subscribeNeighbours(ctx context.Context) (updates <-chan netlink.NeighUpdate, unsubscribe func(), err error) {
	ch := make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	if err := netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				s.log.Warn("neighbour subscription", "err", err)
			}
		},
		ReceiveBufferSize: neighbourQueue, ReceiveBufferForceSize: true,
	}); err != nil {
		close(done)
		return nil, nil, fmt.Errorf("ndproxy: subscribe to neighbours: %w", err)
	}
	var once sync.Once
	return ch, func() { once.Do(func() { close(done) }) }, nil
}

// setActive turns proxy_ndp and the snooping sockets on or off.
func (r *runState) setActive(ctx context.Context, on bool) error {
	if on == (r.deactivate != nil) {
		return nil
	}
	if !on {
		err := r.deactivate()
		r.deactivate = nil
		r.s.log.Info("ND proxy idle: nothing shared")
		return err
	}
	restore, err := r.k.enableProxyNDP()
	if err != nil {
		return errors.Join(err, restore())
	}
	actx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	r.deactivate = func() error {
		cancel()
		wg.Wait()
		r.conns = nil
		return restore()
	}
	for _, side := range []struct {
		ifname   string
		wan, own bool
	}{{r.s.cfg.LAN, false, false}, {r.s.cfg.WAN, true, false}, {r.s.cfg.WAN, true, true}} {
		// The sockets for what others send join all multicast groups: a
		// DAD NS on the LAN goes to the tentative address's solicited-node
		// group, and so does the upstream's NS for a LAN address the proxy
		// does not know yet; a NIC filters the groups nobody joined.
		c, err := listenND(side.ifname, !side.own, side.own)
		if err != nil {
			err = errors.Join(err, r.deactivate())
			r.deactivate = nil
			return err
		}
		context.AfterFunc(actx, func() { c.Close() })
		r.conns = append(r.conns, c)
		wg.Go(func() { r.s.read(actx, c, side.wan, side.own, r.events) })
	}
	r.s.log.Info("ND proxy active", "prefix", r.plan.Prefix)
	return nil
}

// read passes the ND messages heard on one side to the loop.
func (s *Service) read(ctx context.Context, c *packet.Conn, wan, own bool, out chan<- heard) {
	buf := make([]byte, snapLen)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("reading ND messages failed", "wan", wan, "err", err)
			}
			return
		}
		ev, err := parseND(buf[:n])
		if err != nil {
			if !errors.Is(err, errNotND) {
				s.count(func(st *Stats) { st.Malformed++ })
			}
			continue
		}
		select {
		case out <- heard{wan: wan, own: own, ev: ev}:
		default:
			s.count(func(st *Stats) { st.Dropped++ })
		}
	}
}

// run is the state of one Run, owned by its loop.
type runState struct {
	s         *Service
	k         *kernel
	plan      Plan
	tab       *table
	installed map[netip.Addr]bool
	// proven are the installed addresses a host proved it holds, for
	// the log.
	proven     map[netip.Addr]bool
	conflicted map[netip.Addr]bool
	lookedUp   map[netip.Addr]time.Time // LAN lookups on behalf of the upstream, by when
	// probeAt are the claimed addresses to probe on the LAN, by when:
	// soon after the claim, once a DAD in progress has finished.
	probeAt map[netip.Addr]time.Time
	events  chan heard
	// conns are the snooping sockets while active.
	conns []*packet.Conn
	// deactivate stops the sockets and restores the sysctls; nil while
	// idle.
	deactivate func() error
}

func (r *runState) setPlan(p Plan, now time.Time) {
	if p.Prefix != r.plan.Prefix {
		r.s.log.Info("shared prefix", "prefix", p.Prefix, "previous", r.plan.Prefix)
	}
	r.plan = p
	for _, h := range p.Hosts {
		if now.Sub(h.At) <= r.s.cfg.MaxAge {
			r.learn(h.Addr, h.At, "sighting", false)
		}
	}
}

// reconcile makes the kernel's proxy entries what the table and the plan
// want.
func (r *runState) reconcile(now time.Time) {
	r.expire(now)
	want := r.tab.want(r.plan, now)
	wanted := make(map[netip.Addr]bool, len(want))
	for _, a := range want {
		wanted[a] = true
	}
	for a := range r.installed {
		if !wanted[a] {
			r.withdraw(a)
		}
	}
	var wan map[netip.Addr]int
	for _, a := range want {
		if r.installed[a] {
			continue
		}
		if wan == nil {
			var err error
			if wan, err = neighbours(r.k.wanIdx); err != nil {
				r.s.count(func(st *Stats) { st.Errors++ })
				r.s.log.Warn("reading the WAN neighbours", "err", err)
				return
			}
		}
		// RFC 4389 §4.1: an address is proxied onto the side where its
		// owner is not. One that a WAN-side neighbour answers for is
		// theirs, whoever on the LAN claims it.
		if wan[a]&present != 0 {
			if !r.conflicted[a] {
				r.conflicted[a] = true
				r.s.count(func(st *Stats) { st.Conflicts++ })
				r.s.log.Warn("a LAN host claims an address a WAN-side neighbour holds; not proxied", "addr", a)
			}
			continue
		}
		if err := r.k.add(a); err != nil {
			r.s.count(func(st *Stats) { st.Errors++ })
			r.s.log.Warn("proxying failed", "addr", a, "err", err)
			_ = r.k.remove(a)
			continue
		}
		r.installed[a] = true
		delete(r.conflicted, a)
		r.s.count(func(st *Stats) { st.Added++ })
		// Claims come and go by the hundred in a flood: only proven
		// addresses are worth a line at the default level.
		if e := r.tab.entries[a]; e != nil && r.tab.isProven(e, now) {
			r.proven[a] = true
		}
		r.logProof(a, "proxying a LAN host's address on the uplink")
	}
	for a := range r.conflicted {
		if !wanted[a] {
			delete(r.conflicted, a)
		}
	}
	r.publish()
}

func (r *runState) withdraw(a netip.Addr) {
	if err := r.k.remove(a); err != nil {
		r.s.count(func(st *Stats) { st.Errors++ })
		r.s.log.Warn("withdrawing a proxy entry", "addr", a, "err", err)
	}
	delete(r.installed, a)
	r.s.count(func(st *Stats) { st.Removed++ })
	r.logProof(a, "no longer proxying")
	delete(r.proven, a)
}

// logProof logs msg about an installed address at Info if its host proved
// it holds it, else at Debug.
func (r *runState) logProof(a netip.Addr, msg string) {
	if r.proven[a] {
		r.s.log.Info(msg, "addr", a)
		return
	}
	r.s.log.Debug(msg, "addr", a)
}

func (r *runState) publish() {
	proxied := make([]netip.Addr, 0, len(r.installed))
	for a := range r.installed {
		proxied = append(proxied, a)
	}
	slices.SortFunc(proxied, netip.Addr.Compare)
	unproven := len(r.tab.unproven(time.Now()))
	r.s.count(func(st *Stats) {
		st.Prefix, st.Proxied, st.Proxying, st.Unproven = r.plan.Prefix, proxied, len(proxied), unproven
	})
}

// stop withdraws everything and restores the sysctls.
func (r *runState) stop() error {
	for a := range r.installed {
		r.withdraw(a)
	}
	err := r.k.flush()
	if r.deactivate != nil {
		err = errors.Join(err, r.deactivate())
		r.deactivate = nil
	}
	r.s.count(func(st *Stats) { st.Prefix, st.Proxied, st.Proxying, st.Unproven = netip.Prefix{}, nil, 0, 0 })
	return err
}
