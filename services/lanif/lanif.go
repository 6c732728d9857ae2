// Package lanif keeps the gizmo's own addresses on the LAN interface in
// line with a plan: the router address in each advertised /64, the DNS
// service's per-source listening addresses and the legacy IPv4 address.
// Every address on the interface that is not link-local and not in the plan
// is removed, because the gizmo owns the LAN interface.
package lanif

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/reconcile"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Addr is one address the gizmo holds on the LAN.
type Addr struct {
	// Prefix is the address with the on-link prefix length (e.g. 2001:db8::1/64).
	Prefix netip.Prefix
	// NoPrefixRoute: the address must not add an on-link route for its
	// prefix, because another address already does (the extra DNS addresses).
	NoPrefixRoute bool
	// PreferredUntil and ValidUntil bound the address's lifetime; zero means
	// forever. A retired prefix keeps its address (deprecated) until its valid
	// lifetime ends, so that hosts still using it can be answered (RFC 9096).
	PreferredUntil time.Time
	ValidUntil     time.Time
}

// Plan is the full set of addresses the LAN interface should have.
type Plan struct {
	Addrs []Addr
}

// Config configures the service.
type Config struct {
	Interface string
	Logger    *slog.Logger
}

// Service reconciles the interface's addresses with the newest plan.
type Service struct {
	cfg   Config
	log   *slog.Logger
	plans mailbox.Box[Plan]

	mu      sync.Mutex
	applied int
	errors  int
}

// New returns a service for cfg.Interface.
func New(cfg Config) (*Service, error) {
	if cfg.Interface == "" {
		return nil, errors.New("lanif: no interface")
	}
	return &Service{cfg: cfg, log: svclog.For(cfg.Logger, "lanif", "interface", cfg.Interface)}, nil
}

// Update hands the service a new plan; it never blocks and the newest plan
// wins.
func (s *Service) Update(p Plan) { s.plans.Put(p) }

// Stats counts applications of plans and failures.
type Stats struct{ Applied, Errors int }

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Applied: s.applied, Errors: s.errors}
}

// Run applies plans until ctx is done. A plan that fails to apply is retried
// every few seconds: the interface may not exist yet, or be down.
func (s *Service) Run(ctx context.Context) error {
	reconcile.Run(ctx, &s.plans, 3*time.Second, func(p Plan) error {
		err := Apply(s.cfg.Interface, p, time.Now())
		s.mu.Lock()
		if err != nil {
			s.errors++
		} else {
			s.applied++
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("applying LAN addresses failed; retrying", "err", err)
		}
		return err
	})
	return nil
}

// Apply makes ifname's addresses match p.
func Apply(ifname string, p Plan, now time.Time) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("lanif: %s: %w", ifname, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("lanif: bring up %s: %w", ifname, err)
		}
	}
	existing, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("lanif: list addresses of %s: %w", ifname, err)
	}
	var errs []error
	for _, a := range p.Addrs {
		if !a.ValidUntil.IsZero() && !a.ValidUntil.After(now) {
			continue // expired: it is removed below
		}
		if err := netlink.AddrReplace(link, toNetlink(a, now)); err != nil {
			errs = append(errs, fmt.Errorf("lanif: add %s to %s: %w", a.Prefix, ifname, err))
		}
	}
	for _, e := range existing {
		pfx, ok := prefixOf(e.IPNet)
		if !ok || pfx.Addr().IsLinkLocalUnicast() {
			continue
		}
		wanted := slices.ContainsFunc(p.Addrs, func(a Addr) bool {
			return a.Prefix == pfx && (a.ValidUntil.IsZero() || a.ValidUntil.After(now))
		})
		if wanted {
			continue
		}
		if err := netlink.AddrDel(link, &e); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("lanif: remove %s from %s: %w", pfx, ifname, err))
		}
	}
	return errors.Join(errs...)
}

func toNetlink(a Addr, now time.Time) *netlink.Addr {
	ip := net.IP(a.Prefix.Addr().AsSlice())
	na := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(a.Prefix.Bits(), a.Prefix.Addr().BitLen())}}
	if a.Prefix.Addr().Is6() {
		// The router's own addresses are assigned by plan, not autoconfigured,
		// and the DNS service must be able to bind them at once: skip DAD.
		na.Flags |= unix.IFA_F_NODAD
		if a.NoPrefixRoute {
			na.Flags |= unix.IFA_F_NOPREFIXROUTE
		}
		na.ValidLft, na.PreferedLft = lifetimeSeconds(a.ValidUntil, now), lifetimeSeconds(a.PreferredUntil, now)
	}
	return na
}

// lifetimeSeconds converts a deadline into the kernel's lifetime in seconds;
// zero means forever, which the kernel spells 0xffffffff.
func lifetimeSeconds(until, now time.Time) int {
	if until.IsZero() {
		return 0xffffffff
	}
	d := until.Sub(now)
	if d <= 0 {
		return 0
	}
	return int(d / time.Second)
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
