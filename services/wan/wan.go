// Package wan observes and configures the gizmo's uplink: it turns the
// interface into a router uplink (forwarding, RA acceptance, RIOs), listens
// to the upstream's Router Advertisements, watches the link and the
// addresses the kernel configures, keeps the WAN's DHCPv4 lease, and installs
// the unreachable route for the delegated prefix (RFC 7084 WPD-5).
package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/guarded"
	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/ndpsock"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Config configures the WAN service.
type Config struct {
	// Interface is the uplink, e.g. "uplink0".
	Interface string
	// StateDir holds the DHCPv4 lease (wan-dhcp4.json); empty: not kept.
	StateDir string
	// NoIPv4 turns the DHCPv4 client off.
	NoIPv4 bool
	Logger *slog.Logger

	// OnUpstream is called whenever the upstream view changes: link state,
	// addresses, an RA, a lifetime running out. It must not block.
	OnUpstream func(Upstream)
	// OnIPv4 is called with each new or extended DHCPv4 lease, and with nil
	// when the lease is lost. It must not block.
	OnIPv4 func(*IPv4Lease)
	// ClockTrusted reports whether the wall clock is right (synchronised
	// with NTP), so that a lease stored before a restart may be used on
	// its deadlines without a server's ACK. Nil means always.
	ClockTrusted func() bool

	// sysctlRoot replaces /proc/sys in tests.
	sysctlRoot string
	// addrBufferSize replaces addrBufferSize in tests.
	addrBufferSize int
}

// Plan is what the daemon wants on the uplink side.
type Plan struct {
	// Delegated are the delegated prefixes to cover with an unreachable
	// route (RFC 7084 WPD-5): the current one and retired ones whose
	// valid lifetime has not ended yet.
	Delegated []netip.Prefix
}

// Stats are the service's counters, for the dashboard and /metrics.
type Stats struct {
	Upstream Upstream
	IPv4     *IPv4Lease

	RAs            uint64
	RouterSolicits uint64
	// InvalidRAs counts dropped RAs and skipped options by reason.
	InvalidRAs  map[string]uint64
	LinkUps     uint64
	LinkDowns   uint64
	AddrChanges uint64
	// NetlinkDropped counts link and address notifications the netlink
	// library dropped (malformed, or not from the kernel).
	NetlinkDropped uint64
	// AddrResyncs counts the times address notifications were lost (the
	// kernel ends a subscription whose buffer overflowed) and the
	// uplink's addresses were read again.
	AddrResyncs uint64
	// UpstreamFull counts RA entries evicted or refused because their
	// table was full, LifetimesClamped option lifetimes cut to
	// MaxOptionLifetime, UpstreamEntries the tables' sizes, all by table
	// (routers, prefixes, rdnss, routes, pref64).
	UpstreamFull     map[string]uint64
	LifetimesClamped map[string]uint64
	UpstreamEntries  map[string]int

	UnreachableRoutes int
	RouteErrors       uint64

	DHCPv4Discovers uint64
	DHCPv4Acks      uint64
	DHCPv4Naks      uint64
	DHCPv4Renews    uint64
	// DHCPv4Rebinds counts broadcast REQUESTs for the current lease:
	// REBINDING after T2 and INIT-REBOOT after a restart or link flap.
	DHCPv4Rebinds  uint64
	DHCPv4Failures uint64
	InvalidDHCPv4  map[string]uint64
}

// counters guards Stats, which the link, RA and DHCPv4 loops write and
// Stats() reads.
type counters = guarded.Stats[Stats]

// cloneStats deep-copies what a snapshot would otherwise share.
func cloneStats(s Stats) Stats {
	s.InvalidRAs = maps.Clone(s.InvalidRAs)
	s.InvalidDHCPv4 = maps.Clone(s.InvalidDHCPv4)
	s.UpstreamFull = maps.Clone(s.UpstreamFull)
	s.LifetimesClamped = maps.Clone(s.LifetimesClamped)
	s.UpstreamEntries = maps.Clone(s.UpstreamEntries)
	s.Upstream = cloneUpstream(s.Upstream)
	if s.IPv4 != nil {
		l := *s.IPv4
		l.DNS = slices.Clone(l.DNS)
		l.NTP = slices.Clone(l.NTP)
		s.IPv4 = &l
	}
	return s
}

func cloneUpstream(u Upstream) Upstream {
	u.Addrs = slices.Clone(u.Addrs)
	u.Prefixes = slices.Clone(u.Prefixes)
	u.RDNSS = slices.Clone(u.RDNSS)
	u.Routes = slices.Clone(u.Routes)
	return u
}

func countInvalid(s *Stats, reason string) {
	if s.InvalidRAs == nil {
		s.InvalidRAs = map[string]uint64{}
	}
	s.InvalidRAs[reason]++
}

// Service is the WAN service on one uplink.
type Service struct {
	cfg   Config
	log   *slog.Logger
	stats counters

	plans mailbox.Box[Plan]
	// plan is the plan in force (zero before the first: no routes). Only
	// Run's goroutine uses it; it outlives a restart of Run.
	plan Plan
}

// New checks cfg and returns the service; Run starts it.
func New(cfg Config) (*Service, error) {
	if cfg.Interface == "" {
		return nil, errors.New("wan: no interface")
	}
	if cfg.OnUpstream == nil {
		cfg.OnUpstream = func(Upstream) {}
	}
	if cfg.OnIPv4 == nil {
		cfg.OnIPv4 = func(*IPv4Lease) {}
	}
	if cfg.sysctlRoot == "" {
		cfg.sysctlRoot = "/proc/sys"
	}
	s := &Service{
		cfg: cfg,
		log: svclog.For(cfg.Logger, "wan", "interface", cfg.Interface),
	}
	s.stats.Clone = cloneStats
	return s, nil
}

// Update hands the service a new plan; the newest wins. It does not block.
func (s *Service) Update(p Plan) {
	s.plans.Put(Plan{Delegated: slices.Clone(p.Delegated)})
}

// Stats returns a snapshot of the counters and the current view.
func (s *Service) Stats() Stats { return s.stats.Snapshot() }

// Router Solicitation timing, RFC 4861 §10.
const (
	rtrSolicitationInterval = 4 * time.Second
	maxRtrSolicitations     = 3
	rsRetry                 = 500 * time.Millisecond
)

var allRouters = netip.MustParseAddr("ff02::2")

type raPacket struct {
	b        []byte
	src      netip.Addr
	hopLimit int
	at       time.Time
}

// Run configures the uplink and observes it until ctx is done. On return it
// removes its unreachable routes; the DHCPv4 address and route stay, with
// kernel lifetimes, so that a restarted gizmo keeps forwarding while it
// re-confirms the lease (RFC 2131 §3.2).
func (s *Service) Run(ctx context.Context) error {
	ifi, err := s.prepareUplink()
	if err != nil {
		return err
	}

	// Deferred calls run last-in first-out: cancel the goroutines, then
	// wait for them.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r := &runState{Service: s, ifi: ifi, linkUp: make(chan struct{}, 1)}
	// Subscribe before reading the current state, so that no change falls
	// between the two.
	done := make(chan struct{})
	defer close(done)
	if err := r.subscribe(done); err != nil {
		return err
	}
	defer r.endAddrs()
	conn, err := s.listenRAs(ifi)
	if err != nil {
		return err
	}
	defer conn.Close()
	r.conn = conn
	r.raCh, r.raErr = make(chan raPacket, 16), make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.raErr <- s.readRAs(ctx, conn, ifi.Index, r.raCh)
	}()
	if !s.cfg.NoIPv4 {
		s.startDHCPv4(ctx, &wg, r.linkUp)
	}

	if err := r.observeLink(); err != nil {
		return err
	}
	defer func() {
		if _, err := syncUnreachable(nil); err != nil {
			s.log.Error("wan: remove unreachable routes", "err", err)
		}
	}()
	s.applyPlan()
	return r.loop(ctx)
}

// prepareUplink brings the interface up and makes it a router uplink
// (forwarding, RA acceptance, RIOs).
func (s *Service) prepareUplink() (*net.Interface, error) {
	link, err := netlink.LinkByName(s.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("wan: %w", err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("wan: bring up %s: %w", s.cfg.Interface, err)
	}
	if err := applySysctls(s.cfg.sysctlRoot, routerSysctls(s.cfg.Interface), s.log); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("wan: %w", err)
	}
	return ifi, nil
}

// listenRAs opens the socket that hears the upstream's RAs and sends our
// RSs. It is not bound to an address: the link-local address disappears
// while the link is down, and the socket must survive flaps. Packets from
// other interfaces are dropped by index.
func (s *Service) listenRAs(ifi *net.Interface) (*ndp.Conn, error) {
	conn, _, err := ndp.Listen(ifi, ndp.Unspecified)
	if err != nil {
		return nil, fmt.Errorf("wan: ndp on %s: %w", s.cfg.Interface, err)
	}
	if err := ndpsock.Accept(conn, ipv6.ICMPTypeRouterAdvertisement); err != nil {
		conn.Close()
		return nil, fmt.Errorf("wan: ndp on %s: %w", s.cfg.Interface, err)
	}
	return conn, nil
}

// startDHCPv4 runs the WAN's DHCPv4 client until ctx is done; linkUp tells
// it to re-verify its lease after a flap.
func (s *Service) startDHCPv4(ctx context.Context, wg *sync.WaitGroup, linkUp <-chan struct{}) {
	c := &dhcp4Client{
		ifname: s.cfg.Interface, stateDir: s.cfg.StateDir, log: s.log, stats: &s.stats, linkUp: linkUp,
		clockTrusted: s.cfg.ClockTrusted,
		emit: func(l *IPv4Lease) {
			s.stats.Add(func(st *Stats) { st.IPv4 = l })
			s.cfg.OnIPv4(l)
		},
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.run(ctx)
	}()
}

// observer is Run's view under construction.
type observer struct {
	up    *upstream
	addrs map[netip.Prefix]bool
	view  Upstream
}

// addr records an address change and says whether the reported set changed.
// Only global IPv6 addresses that passed DAD count as WAN addresses.
func (o *observer) addr(u netlink.AddrUpdate) bool {
	a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if !ok || !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() {
		return false
	}
	bits, _ := u.LinkAddress.Mask.Size()
	p := netip.PrefixFrom(a, bits)
	usable := u.NewAddr && u.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0
	if usable == o.addrs[p] {
		return false
	}
	if usable {
		o.addrs[p] = true
	} else {
		delete(o.addrs, p)
	}
	return true
}

func isUp(l netlink.Link) bool {
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

// applyPlan takes the newest plan, if one is waiting, and makes the
// unreachable routes match the plan in force. Before the first plan that
// only clears leftovers of an earlier run.
func (s *Service) applyPlan() {
	if p, ok := s.plans.Take(); ok {
		s.plan = p
	}
	p := s.plan
	n, err := syncUnreachable(p.Delegated)
	s.log.Debug("wan: unreachable routes", "want", p.Delegated, "installed", n, "err", err)
	s.stats.Add(func(st *Stats) {
		st.UnreachableRoutes = n
		if err != nil {
			st.RouteErrors++
		}
	})
	if err != nil {
		s.log.Error("wan: unreachable routes", "err", err)
	}
}

// solicit sends a Router Solicitation to all routers (RFC 4861 §6.3.7),
// with our link-layer address so that the router can answer unicast.
func (s *Service) solicit(conn *ndp.Conn, ifi *net.Interface) bool {
	rs := &ndp.RouterSolicitation{}
	if len(ifi.HardwareAddr) > 0 {
		rs.Options = append(rs.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr})
	}
	if err := conn.WriteTo(rs, nil, allRouters); err != nil {
		s.log.Debug("wan: router solicitation", "err", err)
		return false
	}
	s.stats.Add(func(st *Stats) { st.RouterSolicits++ })
	return true
}

func (s *Service) readRAs(ctx context.Context, conn *ndp.Conn, ifindex int, out chan<- raPacket) error {
	b := make([]byte, 65536)
	for {
		m, err := ndpsock.Read(conn, b)
		if err != nil {
			return err
		}
		if m.IfIndex != 0 && m.IfIndex != ifindex {
			continue
		}
		p := raPacket{b: append([]byte(nil), m.Bytes...), src: m.Src, hopLimit: m.HopLimit, at: time.Now()}
		select {
		case out <- p:
		case <-ctx.Done():
			return nil
		}
	}
}
