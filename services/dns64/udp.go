package dns64

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/sockopt"
)

// udpServer answers queries on one UDP socket. Its reader takes queries in
// batches with recvmmsg(2) into a fair queue (fair.go), answers them round
// robin by client, those it can from the cache inline, and sends the
// answers in one sendmmsg(2); queries that need an upstream are handed to a
// goroutine each, so a slow upstream never holds up cached answers. On a
// two-core router this is what brings the service to unbound's throughput
// (docs/performance.md).
type udpServer struct {
	conn  *net.UDPConn
	mm    *mmsgConn
	local netip.AddrPort
	steer *steering // nil: not steering (the program could not be attached)
	wg    sync.WaitGroup
}

// udpBatch is how many datagrams one recvmmsg(2) may return.
const udpBatch = 32

func (s *Service) listenUDP(ap netip.AddrPort) (*udpServer, error) {
	lc := net.ListenConfig{Control: sockopt.Control(largeReceiveBuffer, reusePort, sockopt.Freebind)}
	pc, err := lc.ListenPacket(context.Background(), family("udp", ap.Addr()), ap.String())
	if err != nil {
		return nil, fmt.Errorf("dns64: udp listen on %s: %w", ap, err)
	}
	conn := pc.(*net.UDPConn)
	mm, err := newMmsgConn(conn, udpBatch, maxQuerySize)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &udpServer{conn: conn, mm: mm, local: ap}, nil
}

// start starts the reader.
func (u *udpServer) start(s *Service, st *steering) {
	u.steer = st
	u.wg.Add(1)
	go s.readUDP(u)
}

// close stops the reader and waits for it; answers still being resolved
// upstream are dropped when they try to write.
func (u *udpServer) close() {
	_ = u.conn.Close()
	u.wg.Wait()
}

// maxReads is how many batches a reader may take from its socket before
// it answers one batch: it drains the socket faster than it answers, so
// that under a flood the kernel's receive buffer, which drops whatever
// arrives when it is full, stays empty, and the fair queue, which knows the
// senders, decides what is dropped.
const maxReads = 8

func (s *Service) readUDP(u *udpServer) {
	defer u.wg.Done()
	fq := newFairQueue(maxQueued, udpBatch)
	pass := new(queryPass)
	// One answer buffer per query of a batch, made once: nothing is
	// allocated per answer on the memo's path.
	outBufs := make([][]byte, udpBatch)
	for i := range outBufs {
		outBufs[i] = make([]byte, 0, serverPayload)
	}
	served := make([]int32, 0, udpBatch)
	for {
		if err := s.fillQueue(u, fq); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("dns64: udp read", "addr", u.local.String(), "err", err)
			if fq.total == 0 {
				time.Sleep(10 * time.Millisecond) // e.g. ENOMEM: do not spin
				continue
			}
		}
		now := time.Now() // one clock reading per batch: they arrived together
		for len(served) < udpBatch {
			i, ok := fq.pop()
			if !ok {
				break
			}
			served = append(served, i)
			s.answerQueued(u, fq.slot(i), pass, outBufs[len(u.mm.out)], now)
		}
		if err := u.mm.flush(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Debug("dns64: udp write", "addr", u.local.String(), "err", err)
		}
		for _, i := range served {
			fq.release(i)
		}
		served = served[:0]
	}
}

// fillQueue takes what the socket holds into the fair queue, up to
// maxReads batches. It waits for a query only when the queue is empty.
func (s *Service) fillQueue(u *udpServer, fq *fairQueue) error {
	mm := u.mm
	wait := fq.total == 0
	var err error
	for range maxReads {
		var n int
		if n, err = mm.read(wait); err != nil {
			break
		}
		p := s.current()
		for i := range n {
			wire, client, ok := mm.datagram(i)
			if !ok {
				s.counts.malformed.Add(1)
				continue
			}
			j := fq.admit(p.fairKey(client.Addr()), client.Addr())
			if j < 0 {
				continue
			}
			name, namelen := mm.source(i)
			fq.slot(j).set(wire, client, name, namelen)
		}
		if n < len(mm.in) {
			break // the socket is empty, as far as one read can tell
		}
		wait = false
	}
	d := fq.takeDropped()
	if d > 0 {
		s.counts.longestQueue.Add(d)
	}
	if u.steer != nil {
		s.steerFloods(u, fq, d)
	}
	return err
}

// steerFloods tells the steering what the fair queue dropped, and logs
// when the steered sources change.
func (s *Service) steerFloods(u *udpServer, fq *fairQueue, dropped uint64) {
	var changed bool
	var err error
	if dropped > 0 {
		changed, err = u.steer.dropped(fq.lastDrop, int(dropped), time.Now())
	} else {
		changed, err = u.steer.idle(time.Now())
	}
	if !changed {
		return
	}
	if err != nil {
		s.log.Warn("dns64: steering floods", "addr", u.local.String(), "err", err)
		return
	}
	srcs := u.steer.sources()
	s.log.Info("dns64: sources steered to a socket of their own", "addr", u.local.String(), "sources", fmt.Sprint(srcs))
}

// answerQueued answers one query of the fair queue: from the memo or the
// cache into the batch of answers, or from a goroutine of its own when it
// needs an upstream.
func (s *Service) answerQueued(u *udpServer, sl *querySlot, pass *queryPass, buf []byte, now time.Time) {
	if resp, ok := s.answerFromMemo(sl.wire, sl.client, u.local, buf, now); ok {
		u.mm.queue(&sl.name, sl.namelen, resp)
		return
	}
	*pass = queryPass{cacheOnly: true, now: now}
	resp := s.handleWire(context.Background(), pass, sl.wire, sl.client, u.local, false, buf)
	if pass.missed {
		s.askUpstream(u, sl)
		return
	}
	if len(resp) > 0 {
		s.remember(sl.wire, sl.client, u.local, pass, resp)
		u.mm.queue(&sl.name, sl.namelen, resp)
	}
}

// askUpstream answers a query that needs an upstream from a goroutine of
// its own, with its own copy of the query, unless the client already has
// its share of the queries waiting for upstreams or too many wait in all
// (a flood of random names must not grow memory without bound; the client
// will retry).
func (s *Service) askUpstream(u *udpServer, sl *querySlot) {
	if !s.shares.take(sl.key) {
		s.counts.upstreamShare.Add(1)
		return
	}
	select {
	case s.upstreamSlots <- struct{}{}:
	default:
		s.shares.release(sl.key)
		s.counts.overloaded.Add(1)
		return
	}
	q := append([]byte(nil), sl.wire...)
	to := sl.client
	if sc := scope(&sl.name); sc != 0 {
		// A link-local client: the answer needs its scope.
		to = netip.AddrPortFrom(sl.client.Addr().WithZone(strconv.FormatUint(uint64(sc), 10)), sl.client.Port())
	}
	go s.answerUDPSlow(u, q, sl.client, to, sl.key)
}

func (s *Service) answerUDPSlow(u *udpServer, q []byte, client, to netip.AddrPort, key hostKey) {
	defer func() {
		<-s.upstreamSlots
		s.shares.release(key)
	}()
	pass := &queryPass{counted: true}
	resp := s.handleWire(context.Background(), pass, q, client, u.local, false, make([]byte, 0, serverPayload))
	if resp == nil {
		return
	}
	if _, err := u.conn.WriteToUDPAddrPort(resp, to); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("dns64: udp write", "client", client.String(), "err", err)
	}
}

// queryPass tells handle how far it may go. The UDP reader first tries a
// query with cacheOnly set: a lookup that would have to ask an upstream
// sets missed and gives up, and the query is answered again from a
// goroutine, with counted set so that it is not counted twice.
type queryPass struct {
	cacheOnly bool
	missed    bool
	counted   bool
	// probe marks the memo's look at an answer as it will be later (now
	// set in the future): cache-only, and it counts nothing at all.
	probe bool
	// now, when set, is the time cache lookups use (one clock reading per
	// batch of queries, or the probe's future instant).
	now time.Time

	// What the answer was made of, for the memo (cache-only pass only).
	plan    *compiledPlan
	dns64   bool
	hits    int       // cache lookups, all of them hits
	tick    int64     // the cache tick of the first hit, the earliest
	mixed   bool      // the hits saw different ticks
	expires time.Time // when the first of the cached responses expires
	effects queryEffects
}

// clock is the time cache lookups use.
func (p *queryPass) clock() time.Time {
	if p != nil && !p.now.IsZero() {
		return p.now
	}
	return time.Now()
}

// quiet reports whether the pass must leave every counter alone.
func (p *queryPass) quiet() bool { return p != nil && p.probe }

// cacheHit notes that the answer uses a cached response, looked up in the
// given cache tick, that expires at expires. Its TTLs, as sent, change at
// the next tick (all cached responses age together, see cache).
func (p *queryPass) cacheHit(tick int64, expires time.Time) {
	if p == nil || !p.cacheOnly {
		return
	}
	p.effects.cacheHits++
	if p.hits == 0 {
		p.tick, p.expires = tick, expires
	} else {
		p.mixed = p.mixed || tick != p.tick
		if expires.Before(p.expires) {
			p.expires = expires
		}
	}
	p.hits++
}

// until is how long the answer stays byte for byte the same: until the
// tick after the first hit's, or the first expiry if that comes sooner.
func (p *queryPass) until(c *cache) time.Time {
	if next := c.at(p.tick + 1); next.Before(p.expires) {
		return next
	}
	return p.expires
}

// answerFromMemo answers a UDP query from the memo. ok is false when the
// memo cannot answer it, and the query must take the full path.
func (s *Service) answerFromMemo(wire []byte, client, local netip.AddrPort, buf []byte, now time.Time) (resp []byte, ok bool) {
	q, ok := parseMemoQuery(wire)
	if !ok {
		return nil, false
	}
	p := s.current()
	host, dns64 := p.policy(client.Addr())
	var kb [maxMemoKey]byte
	e := s.memo.get(q.key(&kb, wire, dns64), p, now)
	if e == nil || len(e.wire) > cap(buf) {
		return nil, false
	}
	elapsed := s.cache.tick(now) - e.tick
	if elapsed < 0 || elapsed > 0 && e.aging == nil {
		// A fixed answer past its tick (never before until, a guard), or
		// a batch whose clock reading predates the entry another reader
		// just stored: the full path answers.
		return nil, false
	}
	// From here on, exactly what handle and finish would have done.
	hc := s.counts.host(host)
	s.counts.query(hc, client.Addr(), p.source(local), q.qtype, dns64)
	s.counts.cacheHits.Add(e.effects.cacheHits)
	if e.effects.excluded > 0 {
		s.counts.excluded.Add(e.effects.excluded)
	}
	if e.effects.local {
		s.counts.local.Add(1)
	}
	if e.effects.synthesized != "" {
		s.counts.synthesizedFor(hc, e.effects.synthesized)
	}
	s.counts.finished(e.rcode, e.tc)
	resp = append(buf[:0], e.wire...)
	resp[0], resp[1] = wire[0], wire[1]
	e.age(resp, uint32(elapsed))
	return resp, true
}

// remember puts an answer the cache-only pass built into the memo, when it
// was built from the cache alone and the query has the memo's plain shape.
//
// The entry lives until the first cached response it was made of expires
// when its TTLs age in step with the cache's ticks; remember finds out by
// building the answer once more, as it will be in the last tick before
// then. A TTL that is the same then is a constant (a cap such as the SOA
// MINIMUM of RFC 6147 §5.1.7), one that dropped by exactly the ticks in
// between ages one per tick all along (each TTL is a min and max of
// constants and of cached TTLs less the same age, so every tick lowers it
// by one or by nothing). Any other change, or any byte besides TTLs that
// differs, and the entry lives only until the next tick, as before.
func (s *Service) remember(wire []byte, client, local netip.AddrPort, pass *queryPass, resp []byte) {
	if pass.hits == 0 || pass.plan == nil || len(resp) < 12 {
		return
	}
	q, ok := parseMemoQuery(wire)
	if !ok {
		return
	}
	e := &memoEntry{
		plan:    pass.plan,
		until:   pass.until(s.cache),
		tick:    pass.tick,
		wire:    append([]byte(nil), resp...),
		qtype:   q.qtype,
		effects: pass.effects,
		rcode:   int(resp[3] & 0x0f),
		tc:      resp[2]&0x02 != 0,
	}
	if last := s.cache.tick(pass.expires) - 1; !pass.mixed && last > pass.tick {
		probe := &queryPass{cacheOnly: true, probe: true, now: s.cache.at(last)}
		later := s.handleWire(context.Background(), probe, wire, client, local, false, make([]byte, 0, serverPayload))
		if !probe.missed && probe.plan == pass.plan && probe.hits == pass.hits {
			if aging, ok := agingTTLs(e.wire, later, uint32(last-pass.tick)); ok {
				e.aging, e.until = aging, pass.expires
			}
		}
	}
	var kb [maxMemoKey]byte
	s.memo.put(q.key(&kb, wire, pass.dns64), e)
}

// errWouldBlock is what a cache-only lookup returns on a miss.
var errWouldBlock = errors.New("dns64: answer needs an upstream")

// handleWire answers one query in wire format and returns the answer packed
// into buf, or nil to send nothing. Like miekg/dns's server it answers a
// query that does not parse with FORMERR when its header is sound (RFC 1035
// §4.1.1), and drops anything that is not a query.
func (s *Service) handleWire(ctx context.Context, pass *queryPass, wire []byte, client, local netip.AddrPort, tcp bool, buf []byte) []byte {
	if len(wire) < 12 || wire[2]&0x80 != 0 { // short, or QR=1: not a query
		s.counts.malformed.Add(1)
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(wire); err != nil {
		s.counts.malformed.Add(1)
		// ID, QR=1, the query's opcode, RCODE=FORMERR, no sections.
		return append(buf[:0], wire[0], wire[1], 0x80|wire[2]&0x78, dns.RcodeFormatError, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	m := s.handle(ctx, pass, client, local, tcp, r)
	if m == nil {
		return nil
	}
	if pass != nil && pass.missed {
		return nil
	}
	out, err := m.PackBuffer(buf)
	if err != nil {
		s.log.Warn("dns64: pack answer", "err", err)
		m = new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		if out, err = m.PackBuffer(buf); err != nil {
			return nil
		}
	}
	return out
}

// largeReceiveBuffer asks for a receive buffer that absorbs bursts; the
// kernel caps it at rmem_max, and a smaller one is no reason to fail.
func largeReceiveBuffer(fd int, _ string) error {
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	return nil
}

// reusePort lets every worker's socket bind the same address and port.
func reusePort(fd int, _ string) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}
