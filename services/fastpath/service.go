package fastpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/bpfclock"
	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// DefaultMark is the skb mark bit the fast path sets on the packets it
// forwards, so that the learner on the egress hook does not take them for
// packets the firewall accepted. The learner clears it again.
const DefaultMark = 0x40000000

// Timeouts. Idle flows leave the table like conntrack entries do (UDP
// stream and TCP established, RFC 5382 REQ-5 asks at least 2 h 4 min for
// NAT; a firewall entry has no such floor, and a dropped entry only costs
// one trip through the stack). Refresh is how long a direction rides the
// fast path without the firewall seeing one of its packets.
const (
	UDPTimeout     = 120 * time.Second
	TCPTimeout     = 2 * time.Hour
	ICMPTimeout    = 30 * time.Second
	ClosingTimeout = 10 * time.Second
	RefreshAfter   = 20 * time.Second
)

const beLiberal = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"

// Config is fixed for the life of the service.
type Config struct {
	LAN, WAN string // interface names, e.g. lan0 and uplink0
	Logger   *slog.Logger
	// NetNS, if not zero, is an open network namespace file descriptor
	// to attach in (tests). The namespace of the process otherwise.
	NetNS int
	// MaxFlows bounds the flow table (default 65536). The table is an LRU:
	// when it is full the least recently used flow goes back to the stack.
	MaxFlows int
	// Mark is the skb mark bit of fast-pathed packets (default DefaultMark).
	Mark uint32
	// ReapInterval is how often idle flows are removed and a missing
	// interface is looked for again (default 10 s).
	ReapInterval time.Duration
}

// Plan is what the daemon wants offloaded.
type Plan struct {
	// LANPrefixes are the prefixes of the LAN hosts (at most 8). A flow
	// is offloaded only between an address inside them and one outside;
	// flows of a prefix that is no longer here are dropped from the
	// table. Empty: the fast path is off, its programs off the hooks.
	LANPrefixes []netip.Prefix
	// Exclude are remote prefixes never offloaded (at most 2): the NAT64
	// prefix. The NAT64's replies leave lan0 as IPv6 and would otherwise
	// fill the table with flows whose other direction leaves as IPv4.
	Exclude []netip.Prefix
}

// HostStats are one LAN address's packets on the fast path, since Run
// started. Out is sent by the host (LAN→WAN), In is to it. Bytes are IPv6
// packet lengths, as nftables counts them.
type HostStats struct {
	OutBytes, OutPackets, InBytes, InPackets uint64
}

// Stats is a snapshot of the counters. Packets and Bytes (both directions)
// never met nftables: the daemon adds them to the firewall's native IPv6
// forwarded counter, and Hosts to the per-address accounting.
type Stats struct {
	Active    bool   // attached, with LAN prefixes
	Flows     int    // flows in the table at the last reap
	Offloaded int    // of those, established both ways
	Packets   uint64 // forwarded on the fast path
	Bytes     uint64
	Learned   uint64            // directions learned from the firewall's accepts
	FlowFull  uint64            // flows not learned: table full
	HostFull  uint64            // packets not counted per host: host table full
	ToStack   map[string]uint64 // packets handed to the kernel, by reason
	Hosts     map[netip.Addr]HostStats
}

// Service owns the programs.
type Service struct {
	cfg   Config
	log   *slog.Logger
	plans mailbox.Box[Plan]

	mu       sync.Mutex
	dp       *datapath
	plan     Plan
	attached bool
	last     reapResult
}

// New checks the configuration. Nothing touches the kernel before Run.
func New(cfg Config) (*Service, error) {
	if cfg.LAN == "" || cfg.WAN == "" || cfg.LAN == cfg.WAN {
		return nil, fmt.Errorf("fastpath: need two different interfaces, got LAN %q and WAN %q", cfg.LAN, cfg.WAN)
	}
	if cfg.MaxFlows < 0 || cfg.NetNS < 0 {
		return nil, fmt.Errorf("fastpath: MaxFlows %d / NetNS %d must not be negative", cfg.MaxFlows, cfg.NetNS)
	}
	if cfg.MaxFlows == 0 {
		cfg.MaxFlows = 65536
	}
	if cfg.Mark == 0 {
		cfg.Mark = DefaultMark
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = 10 * time.Second
	}
	return &Service{cfg: cfg, log: svclog.For(cfg.Logger, "fastpath")}, nil
}

// Update hands the service a new plan; it never blocks and the newest plan
// wins. A plan with more than 8 LAN prefixes is logged and ignored when it
// is applied.
func (s *Service) Update(p Plan) {
	p.LANPrefixes = slices.Clone(p.LANPrefixes)
	p.Exclude = slices.Clone(p.Exclude)
	s.plans.Put(p)
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Active:    s.attached && len(s.plan.LANPrefixes) > 0,
		Flows:     s.last.Flows,
		Offloaded: s.last.Offloaded,
		ToStack:   map[string]uint64{},
		Hosts:     map[netip.Addr]HostStats{},
	}
	if s.dp == nil {
		return st
	}
	c, err := s.dp.counters()
	if err != nil {
		s.log.Warn("reading counters", "err", err)
		return st
	}
	st.Packets, st.Bytes = c[cFastPackets], c[cFastBytes]
	st.Learned, st.FlowFull, st.HostFull = c[lLearned], c[lFlowFull], c[lHostFull]
	for i, name := range stackReasons {
		st.ToStack[name] = c[i]
	}
	if st.Hosts, err = s.dp.hosts(); err != nil {
		s.log.Warn("reading host counters", "err", err)
		st.Hosts = map[netip.Addr]HostStats{}
	}
	return st
}

func (s *Service) timeouts() timeouts {
	return timeouts{udp: UDPTimeout, tcp: TCPTimeout, icmp: ICMPTimeout, closing: ClosingTimeout, refresh: RefreshAfter}
}

// Run loads and attaches the programs once a plan names LAN prefixes,
// applies plans and reaps idle flows until ctx is done. Then it detaches
// everything, restores the conntrack setting it changed and returns:
// nothing is left in the kernel. A plan without LAN prefixes turns the fast
// path off: the programs leave the hooks (see follow).
func (s *Service) Run(ctx context.Context) error {
	var restore func()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.dp != nil {
			if err := s.dp.close(); err != nil {
				s.log.Warn("closing datapath", "err", err)
			}
		}
		if restore != nil {
			restore()
		}
		s.dp, s.attached = nil, false
	}()

	tick := time.NewTicker(s.cfg.ReapInterval)
	defer tick.Stop()
	clock := time.NewTicker(time.Second)
	defer clock.Stop()
	for {
		if err := s.follow(&restore); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.plans.C():
			if p, ok := s.plans.Take(); ok {
				if err := s.apply(p); err != nil {
					s.log.Error("applying plan", "err", err)
				}
			}
		case <-clock.C:
			s.mu.Lock()
			if s.dp != nil {
				if err := s.dp.setClock(bpfclock.Boot()); err != nil {
					s.log.Warn("clock", "err", err)
				}
			}
			s.mu.Unlock()
		case <-tick.C:
			s.mu.Lock()
			dp, prefixes, exclude := s.dp, s.plan.LANPrefixes, s.plan.Exclude
			s.mu.Unlock()
			if dp == nil {
				continue
			}
			res, err := dp.reap(bpfclock.Boot(), s.timeouts(), prefixes, exclude)
			if err != nil {
				s.log.Warn("reaping flows", "err", err)
				continue
			}
			s.mu.Lock()
			s.last = res
			s.mu.Unlock()
		}
	}
}

// follow puts the programs on the hooks while the plan has LAN prefixes
// and takes them off when it has none. Off means off: attached with
// nothing to offload, the programs would still look up every packet, which
// costs more than the ruleset it skips in a kernel without a BPF JIT
// (docs/performance.md), and conntrack would stay liberal for nothing. The
// programs are loaded the first time they are wanted and kept, with their
// counters, until Run returns. restore is the conntrack setting's.
func (s *Service) follow(restore *func()) error {
	s.mu.Lock()
	want, attached, loaded := len(s.plan.LANPrefixes) > 0, s.attached, s.dp != nil
	s.mu.Unlock()
	switch {
	case want && !attached:
		if !loaded {
			dp, err := loadDatapath(s.cfg.MaxFlows)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.dp = dp
			s.mu.Unlock()
		}
		r, err := s.attach()
		if r != nil {
			*restore = r
		}
		if err != nil {
			s.log.Warn("not attached yet", "err", err)
		}
	case !want && attached:
		s.mu.Lock()
		s.dp.detach()
		s.attached = false
		if *restore != nil {
			(*restore)()
			*restore = nil
		}
		s.mu.Unlock()
		s.log.Info("detached: the plan names no LAN prefixes")
	}
	return nil
}

// attach finds the interfaces, attaches the programs, writes the config
// and makes conntrack's TCP window check liberal (see the package doc). It
// returns a function that restores the old sysctl value.
func (s *Service) attach() (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		lan, wan *net.Interface
		restore  func()
	)
	err := s.inNetNS(func() error {
		var err error
		if lan, err = net.InterfaceByName(s.cfg.LAN); err != nil {
			return fmt.Errorf("fastpath: LAN %s: %w", s.cfg.LAN, err)
		}
		if wan, err = net.InterfaceByName(s.cfg.WAN); err != nil {
			return fmt.Errorf("fastpath: WAN %s: %w", s.cfg.WAN, err)
		}
		if err := s.dp.configure(false, lan.Index, wan.Index, s.cfg.Mark, nil, nil, s.timeouts(), 0, bpfclock.Boot()); err != nil {
			return err
		}
		if err := s.dp.attach(lan.Index, wan.Index); err != nil {
			return err
		}
		old, err := os.ReadFile(beLiberal)
		if err != nil {
			// No conntrack in this kernel: no window check to relax.
			s.log.Info("conntrack TCP setting not present", "err", err)
			return nil
		}
		if err := os.WriteFile(beLiberal, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("fastpath: %s: %w", beLiberal, err)
		}
		restore = func() {
			if err := s.inNetNS(func() error { return os.WriteFile(beLiberal, old, 0o644) }); err != nil {
				s.log.Warn("restoring conntrack setting", "path", beLiberal, "err", err)
			}
		}
		return nil
	})
	if err != nil {
		s.dp.detach()
		return nil, err
	}
	s.attached = true
	if err := s.configureLocked(); err != nil {
		return restore, err
	}
	s.log.Info("attached", "lan", s.cfg.LAN, "lan_ifindex", lan.Index, "wan", s.cfg.WAN, "wan_ifindex", wan.Index)
	return restore, nil
}

func (s *Service) apply(p Plan) error {
	if len(p.LANPrefixes) > maxPrefixes {
		return fmt.Errorf("fastpath: %d LAN prefixes, at most %d", len(p.LANPrefixes), maxPrefixes)
	}
	if len(p.Exclude) > maxExclude {
		return fmt.Errorf("fastpath: %d excluded prefixes, at most %d", len(p.Exclude), maxExclude)
	}
	for _, pf := range append(slices.Clone(p.LANPrefixes), p.Exclude...) {
		if !pf.IsValid() || !pf.Addr().Is6() || pf.Addr().Is4In6() {
			return fmt.Errorf("fastpath: prefix %v is not an IPv6 prefix", pf)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.plan
	s.plan = p
	if !s.attached {
		return nil
	}
	if err := s.configureLocked(); err != nil {
		return err
	}
	// Flows of a retired prefix go now, not at their idle timeout; the
	// program would no longer match them anyway.
	if !slices.Equal(old.LANPrefixes, p.LANPrefixes) || !slices.Equal(old.Exclude, p.Exclude) {
		res, err := s.dp.reap(bpfclock.Boot(), s.timeouts(), p.LANPrefixes, p.Exclude)
		if err != nil {
			return err
		}
		s.last = res
		s.log.Info("plan applied", "lan_prefixes", p.LANPrefixes)
	}
	return nil
}

func (s *Service) configureLocked() error {
	c := s.dp.cfg
	return s.dp.configure(true, int(c.LanIfindex), int(c.WanIfindex), s.cfg.Mark, s.plan.LANPrefixes, s.plan.Exclude, s.timeouts(), 0, bpfclock.Boot())
}

// inNetNS runs fn on a thread in Config.NetNS (or just runs it).
func (s *Service) inNetNS(fn func() error) error {
	if s.cfg.NetNS == 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("fastpath: own netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(s.cfg.NetNS, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("fastpath: setns: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and dies with its goroutine rather
		// than serve others from the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("fastpath: setns back: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// String is for logs.
func (p Plan) String() string {
	var b strings.Builder
	for i, pf := range p.LANPrefixes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pf.String())
	}
	return b.String()
}
