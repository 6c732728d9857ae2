package dns64

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"codeberg.org/monostack/gizmo/internal/sockopt"
)

// maxQuerySize is the read buffer for UDP queries; a larger datagram is not
// a query anyone needs answered and fails to parse.
const maxQuerySize = 4096

// relistenInterval is how often Run retries addresses it could not bind.
const relistenInterval = 2 * time.Second

// Run serves the plan's listeners over UDP and TCP until ctx is done,
// re-listening whenever Update changes them. An address that cannot be
// bound yet is retried; the others keep serving.
func (s *Service) Run(ctx context.Context) error {
	active := map[netip.AddrPort]func(){}
	defer func() {
		for ap, stop := range active {
			stop()
			s.log.Info("dns64: stopped listening", "addr", ap.String())
		}
	}()
	retry := time.NewTicker(relistenInterval)
	defer retry.Stop()
	for {
		want := map[netip.AddrPort]bool{}
		for _, l := range s.current().Listen {
			want[l.Addr] = true
		}
		for ap, stop := range active {
			if !want[ap] {
				stop()
				delete(active, ap)
				s.log.Info("dns64: stopped listening", "addr", ap.String())
			}
		}
		for ap := range want {
			if _, ok := active[ap]; ok {
				continue
			}
			stop, err := s.listen(ap)
			if err != nil {
				s.log.Warn("dns64: cannot listen yet", "addr", ap.String(), "err", err)
				continue
			}
			active[ap] = stop
			s.log.Info("dns64: listening", "addr", ap.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.replan:
		case <-retry.C:
		}
	}
}

// listen binds one address: UDPSockets UDP sockets sharing it through
// SO_REUSEPORT, so that queries are spread over cores, one more for the
// sources steered away as floods (steer.go), and one TCP listener (RFC 7766
// §5: TCP is mandatory). IP_FREEBIND lets it bind an address that is still
// tentative (DAD) or not yet assigned. It returns the function that stops
// them all.
func (s *Service) listen(ap netip.AddrPort) (func(), error) {
	var udps []*udpServer
	stopUDP := func() {
		for _, u := range udps {
			u.close()
		}
	}
	// A socket's index in the SO_REUSEPORT group is the order it was
	// bound in: the steered sources' socket is the last.
	for range s.cfg.UDPSockets + 1 {
		u, err := s.listenUDP(ap)
		if err != nil {
			stopUDP()
			return nil, err
		}
		udps = append(udps, u)
	}
	st := newSteering(udps[0].mm.rc, s.cfg.UDPSockets, ap.Addr().Is6(), &s.counts.steered)
	if err := st.attach(); err != nil {
		// Without the program the kernel's hash spreads all queries over
		// all the sockets, and floods share their buffers with the rest.
		s.log.Warn("dns64: cannot steer floods to a socket of their own", "addr", ap.String(), "err", err)
		st = nil
	}
	for _, u := range udps {
		u.start(s, st)
	}
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.Freebind)}
	l, err := lc.Listen(context.Background(), family("tcp", ap.Addr()), ap.String())
	if err != nil {
		stopUDP()
		return nil, fmt.Errorf("dns64: tcp listen on %s: %w", ap, err)
	}
	fl := newFairListener(l, func(a netip.Addr) hostKey { return s.current().fairKey(a) }, &s.counts.tcpRefused)
	srv := s.serve(&dns.Server{Listener: fl, Handler: s})
	return func() {
		stopUDP()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.ShutdownContext(ctx); err != nil {
			s.log.Debug("dns64: tcp shutdown", "addr", ap.String(), "err", err)
		}
	}, nil
}

func (s *Service) serve(srv *dns.Server) *dns.Server {
	started := make(chan struct{})
	stopped := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() {
		defer close(stopped)
		if err := srv.ActivateAndServe(); err != nil {
			s.log.Warn("dns64: server stopped", "err", err)
		}
	}()
	select {
	case <-started:
	case <-stopped:
	}
	return srv
}

// family is proto ("udp" or "tcp") limited to a's address family, the
// network to listen on a with.
func family(proto string, a netip.Addr) string {
	if a.Is4() {
		return proto + "4"
	}
	return proto + "6"
}
