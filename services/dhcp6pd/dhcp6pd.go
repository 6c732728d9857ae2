// Package dhcp6pd is the gizmo's DHCPv6 prefix delegation client (RFC 8415
// IA_PD) on the uplink: it asks the ISP for a prefix, keeps it alive with
// Renew and Rebind, and reports it to the daemon, which carves the LAN /64
// out of it.
//
// The protocol state lives in machine (no I/O, driven by an explicit clock);
// Service adds the UDP socket on port 546 and the timer.
package dhcp6pd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/guarded"
	"codeberg.org/monostack/gizmo/internal/sockopt"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Config configures the client.
type Config struct {
	// Interface is the uplink, e.g. "uplink0".
	Interface string
	// StateDir holds the DUID and the lease (dhcp6pd-duid.json,
	// dhcp6pd-lease.json).
	StateDir string
	// HintLength is the prefix length asked for when there is no previous
	// prefix to hint (RFC 8415 §18.2.1); 0 asks for none in particular.
	HintLength int
	Logger     *slog.Logger

	// OnLease is called with every accepted lease: the first one, each
	// extension and each change. It must not block.
	OnLease func(Lease)
	// OnLost is called when a prefix stops being delegated: it expired, the
	// server withdrew it, or a different prefix replaced it. The daemon
	// phases it out (RFC 9096 §3). It must not block.
	OnLost func(netip.Prefix)
	// ClockTrusted reports whether the wall clock is right (synchronised
	// with NTP: timesync's Synced). A lease stored before a restart has
	// wall-clock deadlines; while the clock is not trusted, it is confirmed
	// with the server (Rebind) before OnLease reports it. Nil means the
	// clock is always trusted (a board with a real-time clock).
	ClockTrusted func() bool
}

// Stats are the client's counters, for the dashboard and /metrics.
type Stats struct {
	Phase      string
	Lease      *Lease
	Solicits   uint64
	Advertises uint64
	Requests   uint64
	Replies    uint64
	Renews     uint64
	Rebinds    uint64
	// Leases counts accepted Replies, Lost the prefixes given up.
	Leases        uint64
	Lost          uint64
	NoPrefixAvail uint64
	NoBinding     uint64
	// InvalidLeases counts rejected leases by reason (the Reason* constants).
	InvalidLeases map[string]uint64
	// Malformed counts packets that do not parse; Ignored those for another
	// client or transaction.
	Malformed           uint64
	Ignored             uint64
	ReconfigureAccepted uint64
	ReconfigureDropped  uint64
	SendErrors          uint64

	// UnconfirmedDropped counts stored prefixes dropped before they were
	// reported: the server did not confirm them, or the synchronised clock
	// showed they had expired.
	UnconfirmedDropped uint64
	// MalformedTimeOptions counts NTP and SNTP server options (RFC 5908,
	// RFC 4075) that did not parse and were ignored, keeping the rest of
	// the message.
	MalformedTimeOptions uint64
	// MalformedAFTRName counts Replies whose OPTION_AFTR_NAME (RFC 6334)
	// did not parse: their delegation stands, without an AFTR.
	MalformedAFTRName uint64
}

// counters guards Stats, which the machine writes and Stats() reads.
type counters = guarded.Stats[Stats]

// cloneStats deep-copies what a snapshot would otherwise share.
func cloneStats(s Stats) Stats {
	s.InvalidLeases = maps.Clone(s.InvalidLeases)
	if s.Lease != nil {
		l := *s.Lease
		s.Lease = &l
	}
	return s
}

// Service is a DHCPv6-PD client on one interface.
type Service struct {
	cfg     Config
	log     *slog.Logger
	stats   counters
	refresh chan struct{}
}

// New checks cfg and returns a client; Run starts it.
func New(cfg Config) (*Service, error) {
	if cfg.Interface == "" {
		return nil, errors.New("dhcp6pd: no interface")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("dhcp6pd: no state directory")
	}
	if cfg.HintLength < 0 || cfg.HintLength > 64 {
		return nil, fmt.Errorf("dhcp6pd: hint length /%d outside 0..64", cfg.HintLength)
	}
	if cfg.OnLease == nil {
		cfg.OnLease = func(Lease) {}
	}
	if cfg.OnLost == nil {
		cfg.OnLost = func(netip.Prefix) {}
	}
	s := &Service{
		cfg:     cfg,
		log:     svclog.For(cfg.Logger, "dhcp6pd", "interface", cfg.Interface),
		refresh: make(chan struct{}, 1),
	}
	s.stats.Clone = cloneStats
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats { return s.stats.Snapshot() }

// LinkChanged tells the client that the uplink came back up, so that it
// re-validates its lease with Rebind (RFC 8415 §18.2.12) instead of waiting
// for T1. It does not block.
func (s *Service) LinkChanged() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// clockPoll is how often Run asks Config.ClockTrusted while a stored lease
// waits for it.
const clockPoll = time.Second

// All_DHCP_Relay_Agents_and_Servers, RFC 8415 §7.1.
var allServers = net.ParseIP("ff02::1:2")

type packet struct {
	b         []byte
	multicast bool // sent to a multicast group rather than to us
	at        time.Time
}

// Run runs the client until ctx is done. It keeps the lease on disk and
// does not Release it, so that a restart finds the same prefix.
func (s *Service) Run(ctx context.Context) error {
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("dhcp6pd: %w", err)
	}
	duid, iaid, err := loadIdentity(s.cfg.StateDir, ifi.HardwareAddr, time.Now(), s.log)
	if err != nil {
		return err
	}
	conn, err := listen(ctx, s.cfg.Interface)
	if err != nil {
		return err
	}
	defer conn.Close()

	dst := &net.UDPAddr{IP: allServers, Port: 547, Zone: s.cfg.Interface}
	m := &machine{
		log:     s.log,
		duid:    duid,
		iaid:    iaid,
		hintLen: s.cfg.HintLength,
		send: func(b []byte) error {
			_, err := conn.WriteTo(b, dst)
			return err
		},
		rand:  func() float64 { return rand.Float64()*0.2 - 0.1 },
		stats: &s.stats,
		onLease: func(l Lease) {
			s.stats.Add(func(st *Stats) { st.Lease = &l })
			s.cfg.OnLease(l)
		},
		onLost: func(p netip.Prefix) {
			s.stats.Add(func(st *Stats) { st.Lease = nil })
			s.cfg.OnLost(p)
		},
		store: func(l *Lease) {
			if err := storeLease(s.cfg.StateDir, l); err != nil {
				s.log.Error("dhcp6pd: store lease", "err", err)
			}
		},
		clockTrusted: s.cfg.ClockTrusted,
	}

	pkts := make(chan packet, 16)
	readDone := make(chan error, 1)
	go func() { readDone <- readLoop(ctx, conn, pkts) }()

	m.start(loadLease(s.cfg.StateDir, s.log), time.Now())
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		s.stats.Add(func(st *Stats) { st.Phase = m.phase.String() })
		wake := m.wake()
		if m.unconfirmed() {
			// Ask the clock again soon: a stored lease waits for it.
			wake = minTime(wake, time.Now().Add(clockPoll))
		}
		timer.Reset(max(time.Until(wake), 0))
		select {
		case <-ctx.Done():
			conn.Close()
			<-readDone
			return nil
		case err := <-readDone:
			return fmt.Errorf("dhcp6pd: read on %s: %w", s.cfg.Interface, err)
		case p := <-pkts:
			m.receive(p.b, p.multicast, p.at)
		case <-timer.C:
			if m.unconfirmed() && s.cfg.ClockTrusted() {
				m.clockSynced(time.Now())
			}
			m.tick(time.Now())
		case <-s.refresh:
			m.refresh(time.Now())
		}
	}
}

func readLoop(ctx context.Context, conn net.PacketConn, out chan<- packet) error {
	// The destination address tells a unicast Reconfigure from one sent to
	// a group (RFC 8415 §16.11).
	pc := ipv6.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv6.FlagDst, true); err != nil {
		return fmt.Errorf("dhcp6pd: IPV6_RECVPKTINFO: %w", err)
	}
	for {
		b := make([]byte, 65536)
		n, cm, _, err := pc.ReadFrom(b)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p := packet{b: b[:n], at: time.Now(), multicast: cm != nil && cm.Dst.IsMulticast()}
		select {
		case out <- p:
		case <-ctx.Done():
			return nil
		}
	}
}

// listen opens the client's socket: UDP port 546 on the uplink only
// (RFC 8415 §7.2), so that several clients on several links, or a server
// on the LAN, do not see each other's messages.
func listen(ctx context.Context, ifname string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.ReuseAddr, sockopt.BindToDevice(ifname))}
	conn, err := lc.ListenPacket(ctx, "udp6", "[::]:546")
	if err != nil {
		return nil, fmt.Errorf("dhcp6pd: listen on %s port 546: %w", ifname, err)
	}
	return conn, nil
}
