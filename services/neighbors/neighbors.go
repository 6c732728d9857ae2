// Package neighbors watches the kernel's neighbour table on the LAN and
// reports which MAC address uses which IPv6 and IPv4 addresses. This is how
// the gizmo learns every address of a host, privacy addresses included,
// without the host telling it: the kernel resolves each address it forwards
// to or from.
package neighbors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Sighting is one address seen in use by one MAC address.
type Sighting struct {
	MAC  net.HardwareAddr
	Addr netip.Addr
	At   time.Time
}

// Config configures the watcher.
type Config struct {
	Interface string
	Logger    *slog.Logger
	// OnSighting is called for every reachable neighbour entry, at start and
	// on every change, and again every Rescan. It must not block.
	OnSighting func(Sighting)
	// Rescan is how often the whole table is listed again, so that hosts that
	// stay reachable keep being seen. Default one minute.
	Rescan time.Duration
}

// Service watches the neighbour table.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns a watcher for cfg.Interface.
func New(cfg Config) (*Service, error) {
	if cfg.Interface == "" || cfg.OnSighting == nil {
		return nil, errors.New("neighbors: interface and OnSighting are required")
	}
	if cfg.Rescan == 0 {
		cfg.Rescan = time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Service{cfg: cfg, log: log.With("service", "neighbors", "interface", cfg.Interface)}, nil
}

// Run reports sightings until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	for {
		err := s.watch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("neighbour watch failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(3 * time.Second):
		}
	}
}

func (s *Service) watch(ctx context.Context) error {
	link, err := netlink.LinkByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("neighbors: %w", err)
	}
	idx := link.Attrs().Index
	updates := make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.NeighSubscribe(updates, done); err != nil {
		return fmt.Errorf("neighbors: subscribe: %w", err)
	}
	scan := func() error {
		list, err := netlink.NeighList(idx, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("neighbors: list: %w", err)
		}
		for _, n := range list {
			s.report(n)
		}
		return nil
	}
	if err := scan(); err != nil {
		return err
	}
	tick := time.NewTicker(s.cfg.Rescan)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := scan(); err != nil {
				return err
			}
		case u, ok := <-updates:
			if !ok {
				return errors.New("neighbors: netlink subscription closed")
			}
			if u.Type == unix.RTM_NEWNEIGH && u.LinkIndex == idx {
				s.report(u.Neigh)
			}
		}
	}
}

// usable are the states in which the entry proves that the MAC used the
// address recently.
const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT

func (s *Service) report(n netlink.Neigh) {
	if sg, ok := sighting(n, time.Now()); ok {
		s.cfg.OnSighting(sg)
	}
}

// sighting turns a neighbour entry into a sighting, if it names a real host.
func sighting(n netlink.Neigh, now time.Time) (Sighting, bool) {
	if n.State&usable == 0 || len(n.HardwareAddr) != 6 {
		return Sighting{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return Sighting{}, false
	}
	addr = addr.Unmap()
	if addr.IsMulticast() || addr.IsUnspecified() {
		return Sighting{}, false
	}
	mac := n.HardwareAddr
	if mac[0]&1 == 1 || net.HardwareAddr(mac).String() == "00:00:00:00:00:00" {
		return Sighting{}, false
	}
	return Sighting{MAC: append(net.HardwareAddr(nil), mac...), Addr: addr, At: now}, true
}
