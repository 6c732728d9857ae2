package timesync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/internal/serveloop"
	"codeberg.org/monostack/gizmo/internal/sockopt"
)

// relistenInterval is how often the server retries addresses it could not
// bind (the interface may not exist yet).
const relistenInterval = 5 * time.Second

// listener is one server socket and the end of its read loop.
type listener struct {
	c    *net.UDPConn
	done chan struct{}
}

func (l *listener) stop() {
	l.c.Close()
	<-l.done
}

func (l *listener) dead() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// serve keeps one socket per address of Plan.Serve until ctx is done.
func (s *Service) serve(ctx context.Context) {
	ls := map[netip.Addr]*listener{}
	defer func() {
		for _, l := range ls {
			l.stop()
		}
	}()
	failed := map[netip.Addr]bool{}
	// The interface the sockets were bound to: a socket bound to an
	// interface that was deleted and made again (a bridge rebuilt) goes
	// quiet rather than failing, so its index is checked.
	var bound *net.Interface
	reconcile := func() {
		if s.cfg.Interface != "" {
			if bound != nil && serveloop.SameInterface(bound) != nil {
				for a, l := range ls {
					l.stop()
					delete(ls, a)
				}
				bound = nil
				s.log.Info("timesync: LAN interface changed, serving again", "interface", s.cfg.Interface)
			}
			if bound == nil {
				bound, _ = net.InterfaceByName(s.cfg.Interface)
			}
		}
		want := map[netip.Addr]bool{}
		for _, a := range s.currentPlan().Serve {
			if a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() {
				want[a.Unmap()] = true
			}
		}
		for a, l := range ls {
			if !want[a] || l.dead() {
				// A socket whose read failed on its own (its interface
				// went away) is opened again below.
				l.stop()
				delete(ls, a)
				if !want[a] {
					s.log.Info("timesync: stopped serving", "addr", a)
				}
			}
		}
		for a := range failed {
			if !want[a] {
				delete(failed, a)
			}
		}
		for a := range want {
			if ls[a] != nil {
				continue
			}
			c, err := s.listen(ctx, a)
			if err != nil {
				if !failed[a] {
					s.log.Warn("timesync: cannot serve yet, retrying", "addr", a, "err", err)
				}
				failed[a] = true
				s.stats.Add(func(st *Stats) { st.Server.ListenErrors++ })
				continue
			}
			delete(failed, a)
			l := &listener{c: c, done: make(chan struct{})}
			ls[a] = l
			s.log.Info("timesync: serving NTP", "addr", a)
			go func() {
				defer close(l.done)
				s.serveConn(c)
			}()
		}
		listening := make([]netip.Addr, 0, len(ls))
		for a := range ls {
			listening = append(listening, a)
		}
		slices.SortFunc(listening, netip.Addr.Compare)
		s.stats.Add(func(st *Stats) { st.Server.Listening = listening })
	}
	reconcile()
	retry := time.NewTicker(relistenInterval)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.serverKick:
			reconcile()
		case <-retry.C:
			reconcile()
		}
	}
}

// listen opens UDP port 123 on a. IP_FREEBIND lets the socket exist before
// the daemon has put the address on the LAN interface; SO_BINDTODEVICE
// keeps it to Config.Interface.
func (s *Service) listen(ctx context.Context, a netip.Addr) (*net.UDPConn, error) {
	network := "udp6"
	if a.Is4() {
		network = "udp4"
	}
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.Freebind, sockopt.BindToDevice(s.cfg.Interface))}
	pc, err := lc.ListenPacket(ctx, network, netip.AddrPortFrom(a, 123).String())
	if err != nil {
		return nil, fmt.Errorf("timesync: listen on %s port 123: %w", a, err)
	}
	return pc.(*net.UDPConn), nil
}

// serveConn answers requests on c until it is closed.
func (s *Service) serveConn(c *net.UDPConn) {
	b := make([]byte, 1024)
	for {
		n, from, err := c.ReadFromUDPAddrPort(b)
		rx := s.clock.Now()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("timesync: read", "addr", c.LocalAddr(), "err", err)
			}
			return
		}
		out, reason := s.answer(b[:n], from, rx)
		if out == nil {
			s.countDrop(reason)
			continue
		}
		if _, err := c.WriteToUDPAddrPort(out, from); err != nil {
			s.countDrop(DropSend)
			s.log.Debug("timesync: send", "to", from, "err", err)
			continue
		}
		s.stats.Add(func(st *Stats) { st.Server.Replies++ })
	}
}

func (s *Service) countDrop(reason string) {
	s.stats.Add(func(st *Stats) { st.Server.Dropped[reason]++ })
}

// answer is the server's whole decision for one datagram from `from`,
// received at rx: the reply, or nil and the reason to stay silent.
func (s *Service) answer(b []byte, from netip.AddrPort, rx time.Time) ([]byte, string) {
	s.stats.Add(func(st *Stats) { st.Server.Requests++ })
	req, err := parseRequest(b)
	if err != nil {
		return nil, err.Error()
	}
	if from.Port() == 0 {
		return nil, DropSource
	}
	s.mu.Lock()
	ok, why := s.lim.allow(from.Addr().Unmap(), rx)
	s.mu.Unlock()
	if !ok {
		return nil, why
	}
	return reply(req, s.serverUpstream(rx), rx, s.clock.Now()), ""
}
