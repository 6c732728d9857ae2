// Package neighbors reports which MAC address uses which IPv6 and IPv4
// addresses on the LAN. This is how the gizmo learns every address of a
// host, privacy addresses included, without the host telling it.
//
// Two sources, of different worth. Frames: the Neighbor Discovery (RS,
// NS, NA) and ARP packets hosts send, read with their Ethernet header from
// packet sockets whose classic BPF filters let only those through. A
// frame shows that its Ethernet source sent from its IP source; one whose
// link-layer option or ARP sender address names another MAC shows
// nothing and is counted. And the kernel's neighbour table, which holds
// every address the gizmo talks to but believes ND options and ARP about
// others: its entries are reported as such (Sighting.FromFrame false), to
// keep known pairs fresh, and an entry no frame has confirmed lately is
// probed (the kernel sends a unicast NS or ARP request), so that the host
// that holds the address answers with a frame of its own.
//
// On the appliance lan0 is a bridge of the LAN ports: a socket on it sees
// what the bridge passes up to the gizmo (broadcast, multicast, frames to
// the gizmo), with the Ethernet source the host sent. Frames between two
// hosts stay in the bridge, and are not needed: every address that talks
// to or through the gizmo is resolved, and so shown, to it.
package neighbors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/guarded"
	"codeberg.org/monostack/gizmo/internal/serveloop"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Sighting is one address seen in use by one MAC address.
type Sighting struct {
	MAC  net.HardwareAddr
	Addr netip.Addr
	At   time.Time
	// FromFrame: seen in a frame whose Ethernet source is MAC. Otherwise
	// the kernel's neighbour table says so, which believes ND options and
	// ARP about other hosts: such a sighting proves nothing about MAC.
	FromFrame bool
}

// Config configures the watcher.
type Config struct {
	Interface string
	Logger    *slog.Logger
	// OnSighting is called for every sighting: each ND or ARP frame that
	// shows one, every usable neighbour entry at start, on every change
	// and again every Rescan. It is called from several goroutines and
	// must not block.
	OnSighting func(Sighting)
	// Rescan is how often the whole neighbour table is listed again, so
	// that hosts that stay reachable keep being seen. Default one minute.
	Rescan time.Duration
}

// Stats are the watcher's counters since it was created.
type Stats struct {
	// Frames counts the ND and ARP frames read; FrameSightings those
	// that showed a sighting.
	Frames, FrameSightings uint64
	// Ignored counts the frames that showed none, by reason (Reason*).
	Ignored map[string]uint64
	// NeighbourSightings counts neighbour entries reported.
	NeighbourSightings uint64
	// Probes counts neighbour entries the kernel was asked to confirm
	// because no frame had; Untracked those that found the bookkeeping
	// full and were neither tracked nor probed.
	Probes, Untracked uint64
	// Errors counts failed probes and socket errors.
	Errors uint64
	// SocketDrops counts frames the kernel dropped because the frame
	// sockets' queues were full (a flood faster than the watch).
	SocketDrops uint64
}

// Service watches the LAN.
type Service struct {
	cfg   Config
	log   *slog.Logger
	stats guarded.Stats[Stats]

	mu sync.Mutex
	// proven are the (MAC, address) pairs a frame showed, by when;
	// probed the pairs probed, by when. Both bounded by maxTracked.
	proven, probed map[pair]time.Time
}

type pair struct {
	mac  [6]byte
	addr netip.Addr
}

// Bounds of the probing. A frame from a pair within proofTTL needs no
// probe; an unconfirmed pair is probed at most once per probeHoldoff; at
// most maxTracked pairs are remembered, which covers the kernel's own
// neighbour table (1024 entries by default, gc_thresh3).
const (
	proofTTL     = 10 * time.Minute
	probeHoldoff = 10 * time.Minute
	maxTracked   = 4096
)

// New returns a watcher for cfg.Interface.
func New(cfg Config) (*Service, error) {
	if cfg.Interface == "" || cfg.OnSighting == nil {
		return nil, errors.New("neighbors: interface and OnSighting are required")
	}
	if cfg.Rescan == 0 {
		cfg.Rescan = time.Minute
	}
	s := &Service{
		cfg: cfg, log: svclog.For(cfg.Logger, "neighbors", "interface", cfg.Interface),
		proven: map[pair]time.Time{}, probed: map[pair]time.Time{},
	}
	s.stats.Clone = func(st Stats) Stats {
		st.Ignored = maps.Clone(st.Ignored)
		return st
	}
	s.stats.Add(func(st *Stats) {
		// Every reason from the start, so that /metrics shows a zero
		// rather than nothing.
		st.Ignored = map[string]uint64{ReasonLLAddrMismatch: 0, ReasonMalformed: 0, ReasonNoAddress: 0, ReasonSource: 0}
	})
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats { return s.stats.Snapshot() }

// Run reports sightings until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	return serveloop.Run(ctx, s.log, "neighbour watch failed, retrying", 3*time.Second, s.serve)
}

// serve watches the interface until ctx is done, the interface goes, or a
// socket fails. The sockets are opened here, and every netlink call (the
// table, the probes) is made here, in the caller's network namespace.
func (s *Service) serve(ctx context.Context) error {
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("neighbors: %w", err)
	}
	nd, err := listenFrames(ifi, unix.ETH_P_IPV6, ndFilter)
	if err != nil {
		return err
	}
	arp, err := listenFrames(ifi, unix.ETH_P_ARP, arpFilter)
	if err != nil {
		nd.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 2)
	var wg sync.WaitGroup
	frames := []*packet.Conn{nd, arp}
	for _, c := range frames {
		context.AfterFunc(ctx, func() { c.Close() })
		wg.Go(func() { readErr <- s.readFrames(c) })
	}
	defer wg.Wait()
	return s.watchTable(ctx, ifi, readErr, func() { s.countDrops(frames) })
}

// countDrops adds what the kernel dropped on the frame sockets since the
// last call (PACKET_STATISTICS, which resets).
func (s *Service) countDrops(frames []*packet.Conn) {
	var n uint64
	for _, c := range frames {
		if st, err := c.Stats(); err == nil {
			n += uint64(st.Drops)
		}
	}
	if n > 0 {
		s.stats.Add(func(st *Stats) { st.SocketDrops += n })
	}
}

func (s *Service) readFrames(c *packet.Conn) error {
	buf := make([]byte, snapLen)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		sg, reason := parseFrame(buf[:n])
		s.stats.Add(func(st *Stats) {
			st.Frames++
			if reason != "" {
				st.Ignored[reason]++
			} else {
				st.FrameSightings++
			}
		})
		if reason != "" {
			if reason == ReasonLLAddrMismatch {
				s.log.Debug("a frame names another MAC than its source; ignored", "src", net.HardwareAddr(buf[6:12]))
			}
			continue
		}
		now := time.Now()
		for _, a := range []netip.Addr{sg.addr, sg.target} {
			if a.IsValid() {
				s.track(s.proven, pair{[6]byte(sg.mac), a}, now)
				s.cfg.OnSighting(Sighting{MAC: sg.mac, Addr: a, At: now, FromFrame: true})
			}
		}
	}
}

// track notes p in m at now, if m has room (after dropping what is older
// than the longer of proofTTL and probeHoldoff); it reports false when m
// is full.
func (s *Service) track(m map[pair]time.Time, p pair, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := m[p]; !ok && len(m) >= maxTracked {
		for q, at := range m {
			if now.Sub(at) > max(proofTTL, probeHoldoff) {
				delete(m, q)
			}
		}
		if len(m) >= maxTracked {
			return false
		}
	}
	m[p] = now
	return true
}

// needsProbe reports whether the pair has not been shown by a frame within
// proofTTL nor probed within probeHoldoff, and notes the probe.
func (s *Service) needsProbe(p pair, now time.Time) (probe, tracked bool) {
	s.mu.Lock()
	proven, probed := s.proven[p], s.probed[p]
	s.mu.Unlock()
	if now.Sub(proven) < proofTTL || now.Sub(probed) < probeHoldoff {
		return false, true
	}
	if !s.track(s.probed, p, now) {
		return false, false
	}
	return true, true
}

// watchTable follows the neighbour table of ifi until ctx is done, a
// frame reader fails (readErr) or the interface goes, and calls everyCheck
// at each check of the interface.
func (s *Service) watchTable(ctx context.Context, ifi *net.Interface, readErr <-chan error, everyCheck func()) error {
	updates := make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	// A queue for a flood's worth of changes (the kernel makes an entry
	// for every soliciting host); one that overflows ends the
	// subscription, and serve starts over.
	if err := netlink.NeighSubscribeWithOptions(updates, done, netlink.NeighSubscribeOptions{
		ReceiveBufferSize: 4 << 20, ReceiveBufferForceSize: true,
	}); err != nil {
		return fmt.Errorf("neighbors: subscribe: %w", err)
	}
	scan := func() error {
		list, err := netlink.NeighList(ifi.Index, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("neighbors: list: %w", err)
		}
		for _, n := range list {
			s.report(n, ifi.Index)
		}
		return nil
	}
	if err := scan(); err != nil {
		return err
	}
	tick := time.NewTicker(s.cfg.Rescan)
	defer tick.Stop()
	check := time.NewTicker(5 * time.Second)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if ctx.Err() != nil {
				return nil
			}
			s.stats.Add(func(st *Stats) { st.Errors++ })
			return fmt.Errorf("neighbors: read on %s: %w", ifi.Name, err)
		case <-check.C:
			// A socket bound to a deleted interface just goes quiet.
			if err := serveloop.SameInterface(ifi); err != nil {
				return fmt.Errorf("neighbors: %w", err)
			}
			everyCheck()
		case <-tick.C:
			if err := scan(); err != nil {
				return err
			}
		case u, ok := <-updates:
			if !ok {
				return errors.New("neighbors: netlink subscription closed")
			}
			if u.Type == unix.RTM_NEWNEIGH && u.LinkIndex == ifi.Index {
				s.report(u.Neigh, ifi.Index)
			}
		}
	}
}

// usable are the states in which the entry proves that the MAC used the
// address recently.
const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT

// report passes a neighbour entry on, and has the kernel confirm it when
// no frame has: NTF_USE makes a STALE entry DELAY and then PROBE, a
// unicast NS or ARP request to the entry's MAC (RFC 4861 §7.3.3), whose
// answer the frame watch sees if the host holds the address, and which
// ends in FAILED if it does not.
func (s *Service) report(n netlink.Neigh, idx int) {
	now := time.Now()
	sg, ok := sighting(n, now)
	if !ok {
		return
	}
	s.stats.Add(func(st *Stats) { st.NeighbourSightings++ })
	s.cfg.OnSighting(sg)
	if n.State&netlink.NUD_PERMANENT != 0 {
		return
	}
	probe, tracked := s.needsProbe(pair{[6]byte(sg.MAC), sg.Addr}, now)
	if !tracked {
		s.stats.Add(func(st *Stats) { st.Untracked++ })
	}
	if !probe {
		return
	}
	family := netlink.FAMILY_V6
	if sg.Addr.Is4() {
		family = netlink.FAMILY_V4
	}
	err := netlink.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: family, Flags: netlink.NTF_USE, IP: net.IP(sg.Addr.AsSlice())})
	s.stats.Add(func(st *Stats) {
		st.Probes++
		if err != nil {
			st.Errors++
		}
	})
	if err != nil {
		s.log.Debug("probing a neighbour failed", "addr", sg.Addr, "err", err)
	}
}

// sighting turns a neighbour entry into a sighting, if it names a real host.
func sighting(n netlink.Neigh, now time.Time) (Sighting, bool) {
	if n.State&usable == 0 || len(n.HardwareAddr) != 6 || n.Flags&netlink.NTF_PROXY != 0 {
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
	return Sighting{MAC: clone(mac), Addr: addr, At: now}, true
}
