package upnp

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/internal/serveloop"
	"codeberg.org/monostack/gizmo/internal/sockopt"
)

// serve serves plan p until ctx is done or a socket fails. It opens every
// socket itself, on the calling goroutine, and closes them all before it
// returns; Run then opens them again.
func (s *Service) serve(ctx context.Context, p Plan) error {
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("upnp: %w", err)
	}
	var (
		socks []*ssdpSocket
		lns   []net.Listener
	)
	closeAll := func() {
		for _, so := range socks {
			so.conn.Close()
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	defer closeAll()
	s6, err := listenSSDP6(ctx, ifi, location(p.Location6, p.Port))
	if err != nil {
		return err
	}
	socks = append(socks, s6)
	if p.Location4.IsValid() {
		s4, err := listenSSDP4(ctx, ifi, location(p.Location4, p.Port))
		if err != nil {
			return err
		}
		socks = append(socks, s4)
	}
	for _, a := range p.Listen {
		hostport := net.JoinHostPort(a.String(), strconv.Itoa(int(p.Port)))
		// Bound to the LAN port, so that it never hears the WAN; freebind:
		// the LAN address may not be configured yet.
		lc := net.ListenConfig{Control: sockopt.Control(sockopt.ReuseAddr, sockopt.BindToDevice(ifi.Name), sockopt.Freebind)}
		ln, err := lc.Listen(ctx, "tcp", hostport)
		if err != nil {
			return fmt.Errorf("upnp: listen on %s: %w", hostport, err)
		}
		lns = append(lns, ln)
	}

	sctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	// The readers return once their sockets are closed.
	defer func() {
		cancel(nil)
		closeAll()
		wg.Wait()
	}()
	d := devicesOf(p)
	bootID := uint32(time.Now().Unix()) & 0x7fffffff // UDA 1.1 §1.2.2: 31 bits, increasing
	// CheckPinholeWorking looks for flows in conntrack's table, through a
	// handle opened here, in the service's network namespace.
	var flows inboundFlows
	if ct, err := openConntrack(); err != nil {
		s.log.Warn("CheckPinholeWorking will fail", "err", err)
	} else {
		defer ct.close()
		flows = ct
	}
	h := s.handler(p, flows)
	for _, ln := range lns {
		wg.Go(func() {
			if err := s.serveHTTP(sctx, ln, h); err != nil {
				cancel(fmt.Errorf("upnp: HTTP on %s: %w", ln.Addr(), err))
			}
		})
	}
	for _, so := range socks {
		wg.Go(func() {
			if err := s.readSearches(sctx, so, d, bootID); err != nil {
				cancel(err)
			}
		})
	}
	s.announce(socks, d, true, bootID)
	tick := time.NewTicker(announceEvery)
	defer tick.Stop()
	check := time.NewTicker(serveloop.CheckInterval)
	defer check.Stop()
	for {
		select {
		case <-sctx.Done():
			if ctx.Err() != nil {
				// UDA 1.1 §1.2.3: say goodbye when the device leaves.
				s.announce(socks, d, false, bootID)
				return nil
			}
			return context.Cause(sctx)
		case <-tick.C:
			s.announce(socks, d, true, bootID)
		case <-check.C:
			if err := serveloop.SameInterface(ifi); err != nil {
				return fmt.Errorf("upnp: %w", err)
			}
		}
	}
}
