// Package dhcp4 is the gizmo's DHCPv4 server on the LAN. IPv4 is legacy
// here: hosts that can live without it are told so with option 108
// (RFC 8925) and get no address; the others get a lease from the legacy
// pool, with router, DNS and the home.arpa domain.
//
// Every acknowledged lease is on disk before its DHCPACK leaves (a restart
// keeps every lease), yet a storm of clients stays fast: ACKs wait for the
// next write of the lease file, and one write covers every ACK that queued
// up while the previous one was in progress (group commit).
//
// A lease is a duration that the client counts on its own clock (RFC 2131
// §3.3), while the server keeps absolute expiries. When the server's wall
// clock steps (NTP setting the clock of a board without a real-time clock),
// every expiry granted in this run moves with it, so that each lease keeps
// its remaining time; expiries read from disk were computed with the
// previous run's, already corrected, clock and stay as they are. The
// reasoning is in clock.go.
package dhcp4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"codeberg.org/monostack/gizmo/internal/mailbox"
)

// Config is fixed for the life of the service; what changes goes in Plan.
type Config struct {
	// Interface is the LAN interface, e.g. "lan0". The server binds UDP
	// port 67 on it (SO_BINDTODEVICE) and broadcasts replies out of it.
	Interface string
	// StateDir holds the lease file (LeaseFile).
	StateDir string
	Logger   *slog.Logger
	// OnLease is called when a lease is granted or renewed, when a host is
	// told to go IPv6-only (Lease.IP invalid), and for every lease restored
	// from disk when Run starts. OnRelease is called
	// when a lease ends early: RELEASE, DECLINE, a policy that now sends
	// the host option 108, or a new subnet. Calls never overlap; they must
	// not block.
	OnLease   func(Lease)
	OnRelease func(Lease)
	// LAN, if set, replaces the sockets Run opens on Interface
	// (ListenLAN); Run closes it. Tests open it inside a namespace.
	LAN *LAN
	// Conn, if set, is a plain UDP socket instead; Run closes it. Tests
	// and the load generator use it to serve over loopback as a relayed
	// network (replies go to the relay's giaddr, RFC 2131 §4.1). A
	// datagram shows no Ethernet source, so an unrelayed message on Conn
	// is dropped (Stats.Unverified): its chaddr cannot be checked.
	Conn net.PacketConn
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is a running DHCPv4 server.
type Service struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	store *leaseStore
	e     *engine
	limit *limiter
	kick  chan struct{}

	// lan are the sockets Run serves on the LAN, nil when it does not;
	// Stats reads their drop counts.
	lanMu sync.Mutex
	lan   *LAN

	// plans orders concurrent Updates: adoptMu makes taking the newest plan
	// and installing it one step, so the plan of the last Put is the one
	// that stays installed.
	plans   mailbox.Box[Plan]
	adoptMu sync.Mutex

	// evMu serializes the callbacks. queueMu guards evQueue, the leases a
	// plan change ended; it is never held during a callback, so that the
	// daemon may call Update while a callback of ours waits for its lock.
	evMu    sync.Mutex
	queueMu sync.Mutex
	evQueue []Lease
}

// New loads the lease file and returns a server that answers nothing until
// the first Update with an enabled Plan.
func New(cfg Config) (*Service, error) {
	if cfg.Interface == "" && cfg.Conn == nil && cfg.LAN == nil {
		return nil, errors.New("dhcp4: no interface")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("dhcp4: no state directory")
	}
	s := &Service{
		cfg:   cfg,
		log:   cfg.Logger,
		now:   cfg.Now,
		kick:  make(chan struct{}, 1),
		limit: newLimiter(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.e = newEngine(s.log)
	if cfg.Now == nil {
		s.e.offset = wallOffset(time.Now())
	}
	store, recs := openStore(cfg.StateDir, s.log)
	s.store = store
	s.e.restore(recs)
	// Start from one clean snapshot: whatever the journal held is folded
	// in, and whatever was damaged is gone from the live files.
	if err := s.store.compact(s.e.snapshot()); err != nil {
		s.log.Error("dhcp4: cannot write the lease file; leases will not survive a restart until it works", "err", err)
	}
	return s, nil
}

// Update installs a new plan before it returns; the newest wins. An invalid
// plan is logged and ignored, so the server keeps serving the last good one.
func (s *Service) Update(p Plan) {
	if err := p.Validate(); err != nil {
		s.log.Error("dhcp4: ignoring plan", "err", err)
		return
	}
	s.plans.Put(p)
	s.adoptPlan()
}

// adoptPlan installs the newest plan, if one is waiting, and queues the
// leases it ended for OnRelease (the committer reports them after its next
// write).
func (s *Service) adoptPlan() {
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	p, ok := s.plans.Take()
	if !ok {
		return // a concurrent Update installed it, or a newer one
	}
	dropped := s.e.setPlan(p)
	if len(dropped) > 0 {
		s.queueMu.Lock()
		for _, b := range dropped {
			if b.Expires.After(s.now()) {
				s.evQueue = append(s.evQueue, *leaseOf(b))
			}
		}
		s.queueMu.Unlock()
	}
	s.poke()
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	s.lanMu.Lock()
	if s.lan != nil {
		s.e.c.socketDrops.Add(s.lan.drops())
	}
	s.lanMu.Unlock()
	return s.e.stats(s.now())
}

// Leases returns the current leases, ordered by address.
func (s *Service) Leases() []Lease { return s.e.leases(s.now()) }

func (s *Service) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run serves until ctx is done, then writes the lease file one last time.
func (s *Service) Run(ctx context.Context) error {
	conn, lan := s.cfg.Conn, s.cfg.LAN
	if conn == nil && lan == nil {
		var err error
		if lan, err = s.listen(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before the interface appeared
			}
			return err
		}
	}
	if lan != nil {
		conn = lan.udp
	}
	// The daemon's view of the hosts starts empty after a restart; the
	// leases on disk are as current as any it will hear about later.
	if s.cfg.OnLease != nil {
		s.evMu.Lock()
		for _, l := range s.Leases() {
			s.cfg.OnLease(l)
		}
		s.evMu.Unlock()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		if lan != nil {
			lan.Close()
		} else {
			conn.Close()
		}
	}()

	io := newPacketIO(conn)
	var wg sync.WaitGroup
	// Several readers share each socket so that parsing and building
	// replies use every core; a bounded set instead of a goroutine per
	// packet keeps a storm from piling up goroutines.
	readers := max(2, runtime.GOMAXPROCS(0))
	if lan != nil {
		s.lanMu.Lock()
		s.lan = lan
		s.lanMu.Unlock()
		defer func() {
			s.lanMu.Lock()
			s.lan = nil
			s.lanMu.Unlock()
		}()
		for _, f := range lan.frames {
			growReadBuffer(f.c, s.log)
			for range readers {
				wg.Go(func() { s.serveFrames(ctx, io, f) })
			}
		}
	} else {
		growReadBuffer(conn, s.log)
		for range readers {
			wg.Go(func() { s.serve(ctx, io) })
		}
	}
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		s.commit(ctx, io)
	}()
	wg.Wait()
	cancel()
	<-committed
	return nil
}

// listen opens the server's sockets on the LAN interface, retrying while
// the interface does not exist yet (the daemon may still be creating
// lan0).
func (s *Service) listen(ctx context.Context) (*LAN, error) {
	logged := false
	for {
		lan, err := ListenLAN(s.cfg.Interface)
		if err == nil {
			s.log.Info("dhcp4: serving", "interface", s.cfg.Interface, "ports", len(lan.frames))
			return lan, nil
		}
		if !logged {
			s.log.Warn("dhcp4: cannot listen yet, retrying", "interface", s.cfg.Interface, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dhcp4: listen on %s: %w", s.cfg.Interface, err)
		case <-time.After(time.Second):
		}
	}
}

// serve reads batches of datagrams from a plain UDP socket (Config.Conn).
func (s *Service) serve(ctx context.Context, io *packetIO) {
	ms := newMessages(batch)
	var replies []*dhcpv4.DHCPv4
	var events []outcome
	for {
		n, err := io.read(ms)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("dhcp4: read", "err", err)
			continue
		}
		replies, events = replies[:0], events[:0]
		for _, m := range ms[:n] {
			out := s.handlePacket(inbound{payload: m.Buffers[0][:m.N]})
			if out.reply != nil {
				replies = append(replies, out.reply)
			}
			if out.lease != nil || out.ended != nil {
				events = append(events, out)
			}
		}
		s.answer(io, replies, events)
	}
}

// serveFrames reads the requests of one port from its packet socket.
func (s *Service) serveFrames(ctx context.Context, io *packetIO, f frameSocket) {
	b, oob := make([]byte, frameSnap), make([]byte, 128)
	for {
		n, csumPending, err := f.readFrame(b, oob)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			s.log.Warn("dhcp4: read", "port", f.port, "err", err)
			continue
		}
		in, err := parseFrame(b[:n], csumPending)
		if err != nil {
			if !errors.Is(err, errNotIPv4UDP) {
				s.e.c.malformed.Add(1)
				s.log.Debug("dhcp4: malformed frame", "err", err, "len", n)
			}
			continue
		}
		in.port = f.port
		out := s.handlePacket(in)
		var replies []*dhcpv4.DHCPv4
		if out.reply != nil {
			replies = append(replies, out.reply)
		}
		var events []outcome
		if out.lease != nil || out.ended != nil {
			events = append(events, out)
		}
		s.answer(io, replies, events)
	}
}

// answer sends replies, reports events and wakes the committer if there is
// durable work.
func (s *Service) answer(io *packetIO, replies []*dhcpv4.DHCPv4, events []outcome) {
	if len(replies) > 0 {
		if err := io.send(replies); err != nil {
			s.log.Warn("dhcp4: send", "err", err)
		}
	}
	s.report(events)
	if s.e.hasWork() {
		s.poke()
	}
}

// handlePacket answers one message; durable replies are queued for the
// committer instead.
func (s *Service) handlePacket(in inbound) outcome {
	req, err := dhcpv4.FromBytes(in.payload)
	if err != nil {
		s.e.c.malformed.Add(1)
		s.log.Debug("dhcp4: malformed packet", "err", err, "len", len(in.payload))
		return outcome{}
	}
	now := s.now()
	if !s.admit(req, in, now) {
		return outcome{}
	}
	return s.e.handle(req, now)
}

// commit is the group committer: whenever there are queued ACKs or changes,
// it writes one snapshot of the table and then sends every ACK that the
// snapshot covers.
func (s *Service) commit(ctx context.Context, io *packetIO) {
	for {
		select {
		case <-s.kick:
		case <-ctx.Done():
			s.flush(io, false)
			s.store.close()
			return
		}
		if !s.flush(io, true) {
			// The disk refused; do not spin on it.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			s.poke()
		}
	}
}

// flush writes the changes, then sends the replies they cover. It reports
// false when the lease database could not be written.
func (s *Service) flush(io *packetIO, send bool) bool {
	changes, batch := s.e.takeBatch()
	ok := true
	if len(changes) > 0 {
		if err := s.store.append(changes); err != nil {
			ok = false
			s.e.c.persistErr.Add(1)
			s.e.retry(changes)
			// The ACKs still go out: the leases hold in memory, and a LAN
			// without DHCP is worse than leases a crash might lose.
			s.log.Error("dhcp4: cannot persist leases", "err", err)
		} else if s.store.needsCompaction(s.e.size()) {
			if err := s.store.compact(s.e.snapshot()); err != nil {
				ok = false
				s.e.c.persistErr.Add(1)
				s.log.Error("dhcp4: cannot compact the lease journal", "err", err)
			}
		}
	}
	if send && len(batch) > 0 {
		replies := make([]*dhcpv4.DHCPv4, len(batch))
		for i, o := range batch {
			replies[i] = o.reply
		}
		if err := io.send(replies); err != nil {
			s.log.Warn("dhcp4: send", "err", err)
		}
		s.report(batch)
	}
	s.queueMu.Lock()
	ended := s.evQueue
	s.evQueue = nil
	s.queueMu.Unlock()
	s.evMu.Lock()
	if s.cfg.OnRelease != nil {
		for _, l := range ended {
			s.cfg.OnRelease(l)
		}
	}
	s.evMu.Unlock()
	return ok
}

// report tells the daemon what the outcomes changed, in order.
func (s *Service) report(outs []outcome) {
	if len(outs) == 0 {
		return
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	for _, o := range outs {
		if o.ended != nil && s.cfg.OnRelease != nil {
			s.cfg.OnRelease(*o.ended)
		}
		if o.lease != nil && s.cfg.OnLease != nil {
			s.cfg.OnLease(*o.lease)
		}
	}
}

// destination is RFC 2131 §4.1: to the relay if there is one; NAKs
// broadcast; to ciaddr when the client has an address; otherwise
// broadcast. (Unicasting to yiaddr before the client has configured it
// would need an ARP entry forged for chaddr; clients that cannot receive
// broadcasts are rarer than servers that only broadcast, and dhcpcd and
// dhclient listen on raw sockets anyway.)
func destination(r *dhcpv4.DHCPv4) *net.UDPAddr {
	if g := addr4(r.GatewayIPAddr); g.IsValid() {
		return &net.UDPAddr{IP: net.IP(g.AsSlice()), Port: dhcpv4.ServerPort}
	}
	if r.MessageType() == dhcpv4.MessageTypeNak {
		return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
	if c := addr4(r.ClientIPAddr); c.IsValid() {
		return &net.UDPAddr{IP: net.IP(c.AsSlice()), Port: dhcpv4.ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}
