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

	// sysctlRoot replaces /proc/sys in tests.
	sysctlRoot string
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

	planMu  sync.Mutex
	plan    Plan
	planSet bool
	planCh  chan struct{}
}

// New checks cfg and returns the service; Run starts it.
func New(cfg Config) (*Service, error) {
	if cfg.Interface == "" {
		return nil, errors.New("wan: no interface")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
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
		cfg:    cfg,
		log:    cfg.Logger.With("service", "wan", "interface", cfg.Interface),
		planCh: make(chan struct{}, 1),
	}
	s.stats.Clone = cloneStats
	return s, nil
}

// Update hands the service a new plan; the newest wins. It does not block.
func (s *Service) Update(p Plan) {
	s.planMu.Lock()
	s.plan = Plan{Delegated: slices.Clone(p.Delegated)}
	s.planSet = true
	s.planMu.Unlock()
	select {
	case s.planCh <- struct{}{}:
	default:
	}
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
	link, err := netlink.LinkByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("wan: bring up %s: %w", s.cfg.Interface, err)
	}
	if err := applySysctls(s.cfg.sysctlRoot, routerSysctls(s.cfg.Interface), s.log); err != nil {
		return err
	}
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}

	// Deferred calls run last-in first-out: cancel the goroutines, then
	// wait for them.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Subscribe before reading the current state, so that no change falls
	// between the two.
	done := make(chan struct{})
	defer close(done)
	linkCh := make(chan netlink.LinkUpdate, 16)
	addrCh := make(chan netlink.AddrUpdate, 64)
	// The library reports every message it drops through the callback and
	// reads on; a subscription has ended only when its channel is closed.
	// Most reports are harmless: a subscriber that lists what exists
	// (ListExisting, as the roles watch does) sends its dump request to
	// its multicast groups, so every other socket of the namespace in
	// those groups receives that request from a user-space port id
	// ("Wrong sender portid"). Ending the service on such a report kept
	// the gizmo without its default router for the 5 s restart pause.
	subErr := &lastError{}
	onErr := func(err error) {
		subErr.set(err)
		s.stats.Add(func(st *Stats) { st.NetlinkDropped++ })
		s.log.Debug("wan: netlink message dropped", "err", err)
	}
	if err := netlink.LinkSubscribeWithOptions(linkCh, done, netlink.LinkSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("wan: subscribe to links: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrCh, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr, ListExisting: true}); err != nil {
		return fmt.Errorf("wan: subscribe to addresses: %w", err)
	}

	// The NDP socket is not bound to an address: the link-local address
	// disappears while the link is down, and the socket must survive
	// flaps. Packets from other interfaces are dropped by index.
	conn, _, err := ndp.Listen(ifi, ndp.Unspecified)
	if err != nil {
		return fmt.Errorf("wan: ndp on %s: %w", s.cfg.Interface, err)
	}
	defer conn.Close()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterAdvertisement)
	if err := conn.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("wan: icmp filter: %w", err)
	}
	if err := conn.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagInterface, true); err != nil {
		return fmt.Errorf("wan: control messages: %w", err)
	}
	raCh := make(chan raPacket, 16)
	raErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		raErr <- s.readRAs(ctx, conn, ifi.Index, raCh)
	}()

	linkUp := make(chan struct{}, 1)
	if !s.cfg.NoIPv4 {
		c := &dhcp4Client{
			ifname: s.cfg.Interface, stateDir: s.cfg.StateDir, log: s.log, stats: &s.stats, linkUp: linkUp,
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

	o := &observer{
		up:    newUpstream(),
		addrs: map[netip.Prefix]bool{},
		view:  Upstream{Interface: s.cfg.Interface},
	}
	o.up.linkMTU = ifi.MTU
	// Read the link again now that the subscription runs: the one from
	// before LinkSetUp is stale.
	if link, err = netlink.LinkByName(s.cfg.Interface); err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	o.view.Up = isUp(link)
	defer func() {
		if _, err := syncUnreachable(nil); err != nil {
			s.log.Error("wan: remove unreachable routes", "err", err)
		}
	}()
	s.applyPlan()

	rsLeft := maxRtrSolicitations
	rsTimer := time.NewTimer(0)
	defer rsTimer.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	publish := func() {
		now := time.Now()
		o.up.expire(now)
		o.up.fill(&o.view, now)
		o.view.Addrs = slices.SortedFunc(maps.Keys(o.addrs), func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		v := cloneUpstream(o.view)
		full, clamped, sizes := maps.Clone(o.up.full), maps.Clone(o.up.clamped), o.up.sizes()
		s.stats.Add(func(st *Stats) {
			st.Upstream = cloneUpstream(v)
			st.UpstreamFull, st.LifetimesClamped, st.UpstreamEntries = full, clamped, sizes
		})
		s.cfg.OnUpstream(v)
		expiry.Reset(max(time.Until(o.up.nextExpiry(now)), 0))
	}
	publish()

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-raErr:
			// Without the NDP socket the view would silently go stale;
			// let the daemon restart the service instead.
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("wan: read RAs on %s: %w", s.cfg.Interface, err)
		case <-rsTimer.C:
			if rsLeft > 0 && o.view.Up {
				if s.solicit(conn, ifi) {
					rsLeft--
					rsTimer.Reset(rtrSolicitationInterval)
				} else {
					// Right after link-up the link-local address may not
					// be there yet (EADDRNOTAVAIL); try again soon.
					rsTimer.Reset(rsRetry)
				}
			}
		case p := <-raCh:
			ra, err := parseRA(p.b, p.src, p.hopLimit)
			if err != nil {
				s.stats.Add(func(st *Stats) { countInvalid(st, reasonOf(err)) })
				s.log.Debug("wan: dropped RA", "from", p.src, "err", err)
				continue
			}
			s.stats.Add(func(st *Stats) { st.RAs++ })
			s.log.Debug("wan: RA", "from", p.src, "router_lifetime", ra.RouterLifetime, "options", len(ra.Options))
			if ra.RouterLifetime > 0 && rsLeft < maxRtrSolicitations {
				// RFC 4861 §6.3.7: stop soliciting once a router
				// answered. An RA with router lifetime 0 (e.g. a PREF64
				// or RIO-only announcer) is not the default router we
				// are asking for. At least one RS goes out after each
				// link-up, so that a flap always re-asks the upstream.
				rsLeft = 0
			}
			for _, e := range o.up.apply(ra, p.src, p.at) {
				s.stats.Add(func(st *Stats) { countInvalid(st, reasonOf(e)) })
				s.log.Info("wan: skipped RA option", "from", p.src, "err", e)
			}
			publish()
		case <-expiry.C:
			publish()
		case u, ok := <-linkCh:
			if !ok {
				return fmt.Errorf("wan: link subscription on %s ended: %v", s.cfg.Interface, subErr.get())
			}
			if u.Attrs().Index != ifi.Index {
				continue
			}
			up := isUp(u.Link)
			if mtu := u.Attrs().MTU; mtu > 0 {
				o.up.linkMTU = mtu
			}
			if up == o.view.Up {
				continue
			}
			o.view.Up = up
			if up {
				s.stats.Add(func(st *Stats) { st.LinkUps++ })
				s.log.Info("wan: link up")
				// A flap keeps what we learned (lifetimes still apply);
				// ask the router again at once (RFC 4861 §6.3.7) and let
				// DHCPv4 re-verify its lease.
				rsLeft = maxRtrSolicitations
				rsTimer.Reset(0)
				select {
				case linkUp <- struct{}{}:
				default:
				}
			} else {
				s.stats.Add(func(st *Stats) { st.LinkDowns++ })
				s.log.Warn("wan: link down")
			}
			publish()
		case u, ok := <-addrCh:
			if !ok {
				return fmt.Errorf("wan: address subscription on %s ended: %v", s.cfg.Interface, subErr.get())
			}
			if u.LinkIndex != ifi.Index || !o.addr(u) {
				continue
			}
			s.stats.Add(func(st *Stats) { st.AddrChanges++ })
			publish()
		case <-s.planCh:
			s.applyPlan()
		}
	}
}

// lastError keeps the last error a netlink subscription reported, for the
// message when the subscription ends.
type lastError struct {
	mu  sync.Mutex
	err error
}

func (l *lastError) set(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *lastError) get() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
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

func (s *Service) applyPlan() {
	s.planMu.Lock()
	p, ok := s.plan, s.planSet
	s.planMu.Unlock()
	if !ok {
		// Before the first plan, only clear leftovers of an earlier run.
		p = Plan{}
	}
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
		n, cm, src, err := conn.ReadRaw(b)
		if err != nil {
			return err
		}
		hop := -1
		if cm != nil {
			if cm.IfIndex != 0 && cm.IfIndex != ifindex {
				continue
			}
			hop = cm.HopLimit
		}
		p := raPacket{b: append([]byte(nil), b[:n]...), src: src, hopLimit: hop, at: time.Now()}
		select {
		case out <- p:
		case <-ctx.Done():
			return nil
		}
	}
}
