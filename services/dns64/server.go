package dns64

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
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
	active := map[netip.AddrPort][]*dns.Server{}
	defer func() {
		for ap, srvs := range active {
			s.stop(ap, srvs)
		}
	}()
	retry := time.NewTicker(relistenInterval)
	defer retry.Stop()
	for {
		want := map[netip.AddrPort]bool{}
		for _, l := range s.current().Listen {
			want[l.Addr] = true
		}
		for ap, srvs := range active {
			if !want[ap] {
				s.stop(ap, srvs)
				delete(active, ap)
			}
		}
		for ap := range want {
			if _, ok := active[ap]; ok {
				continue
			}
			srvs, err := s.listen(ap)
			if err != nil {
				s.log.Warn("dns64: cannot listen yet", "addr", ap.String(), "err", err)
				continue
			}
			active[ap] = srvs
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

func (s *Service) stop(ap netip.AddrPort, srvs []*dns.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, srv := range srvs {
		if err := srv.ShutdownContext(ctx); err != nil {
			s.log.Debug("dns64: shutdown", "addr", ap.String(), "err", err)
		}
	}
	s.log.Info("dns64: stopped listening", "addr", ap.String())
}

// listen binds one address: UDPSockets UDP sockets sharing it through
// SO_REUSEPORT, so the kernel spreads queries over cores, and one TCP
// listener (RFC 7766 §5: TCP is mandatory). IP_FREEBIND lets it bind an
// address that is still tentative (DAD) or not yet assigned.
func (s *Service) listen(ap netip.AddrPort) ([]*dns.Server, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
				return
			}
			if ap.Addr().Is4() {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	network := "6"
	if ap.Addr().Is4() {
		network = "4"
	}
	var srvs []*dns.Server
	fail := func(err error) ([]*dns.Server, error) {
		for _, srv := range srvs {
			_ = srv.Shutdown()
		}
		return nil, fmt.Errorf("dns64: listen on %s: %w", ap, err)
	}
	ctx := context.Background()
	for range s.cfg.UDPSockets {
		pc, err := lc.ListenPacket(ctx, "udp"+network, ap.String())
		if err != nil {
			return fail(err)
		}
		srvs = append(srvs, s.serve(&dns.Server{PacketConn: pc, Handler: s, UDPSize: maxQuerySize}))
	}
	l, err := lc.Listen(ctx, "tcp"+network, ap.String())
	if err != nil {
		return fail(err)
	}
	srvs = append(srvs, s.serve(&dns.Server{Listener: l, Handler: s}))
	return srvs, nil
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
