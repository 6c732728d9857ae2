package upnp

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/sockopt"
)

// ssdpSocket is one SSDP socket on the LAN interface: IPv6 or IPv4.
type ssdpSocket struct {
	conn  *net.UDPConn
	group netip.Addr // where announcements go
	loc   string     // the description's URL for this family
	// read returns a datagram, its source and whether it was sent to a
	// multicast group.
	read func(b []byte) (n int, src net.Addr, multicast bool, err error)
}

// announce sends ssdp:alive or ssdp:byebye for every target to each
// socket's group.
func (s *Service) announce(socks []*ssdpSocket, d devices, alive bool, bootID uint32) {
	dst := func(so *ssdpSocket) *net.UDPAddr {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(so.group, ssdpPort))
	}
	for _, so := range socks {
		for _, t := range allTargets(d) {
			if _, err := so.conn.WriteTo(notify(t, so.group, alive, so.loc, bootID), dst(so)); err != nil {
				s.count(func(st *Stats) { st.SendErrors++ })
				s.log.Debug("SSDP announcement not sent", "group", so.group, "err", err)
				continue
			}
			s.count(func(st *Stats) { st.Notifies++ })
		}
	}
}

// readSearches answers the searches that arrive on so until its socket is
// closed.
func (s *Service) readSearches(ctx context.Context, so *ssdpSocket, d devices, bootID uint32) error {
	b := make([]byte, maxSearch+1)
	for {
		n, src, multicast, err := so.read(b)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("upnp: SSDP read: %w", err)
		}
		s.search(so, b[:n], src, multicast, d, bootID)
	}
}

// search answers one datagram, or counts why not.
func (s *Service) search(so *ssdpSocket, b []byte, src net.Addr, multicast bool, d devices, bootID uint32) {
	udp, ok := src.(*net.UDPAddr)
	if !ok {
		return
	}
	// A source port below 1024 is no control point's (they search from
	// an ephemeral port, or from 1900): answering it would aim the
	// answers at a service such as echo or chargen.
	if udp.Port < 1024 && udp.Port != ssdpPort {
		s.dropped(dropSourcePort)
		return
	}
	if len(b) > maxSearch {
		s.dropped(dropMalformed)
		return
	}
	req, err := parseSearch(b, multicast)
	if err == errNotSearch {
		s.dropped(dropNotSearch)
		return
	}
	if err != nil {
		s.dropped(dropMalformed)
		return
	}
	ts := answers(req.ST, d)
	if len(ts) == 0 {
		return // another kind of device is searched for
	}
	if !s.searches.allow(peerAddr(src), time.Now()) {
		s.dropped(dropRateLimited)
		return
	}
	if s.pending.Add(1) > int64(s.limits.PendingReplies) {
		s.pending.Add(-1)
		s.dropped(dropQueueFull)
		return
	}
	s.count(func(st *Stats) { st.Searches++ })
	var delay time.Duration
	if req.MX > 0 {
		delay = rand.N(min(time.Duration(req.MX)*time.Second, maxDelay))
	}
	time.AfterFunc(delay, func() {
		defer s.pending.Add(-1)
		now := time.Now()
		for _, t := range ts {
			if _, err := so.conn.WriteTo(searchReply(t, so.loc, bootID, now), src); err != nil {
				s.count(func(st *Stats) { st.SendErrors++ })
				return // the socket was closed (a new plan) or the peer is gone
			}
			s.count(func(st *Stats) { st.Replies++ })
		}
	})
}

// listenSSDP6 opens the IPv6 SSDP socket on ifi: port 1900, the groups
// ff02::c and ff05::c joined there only.
func listenSSDP6(ctx context.Context, ifi *net.Interface, loc string) (*ssdpSocket, error) {
	var p *ipv6.PacketConn
	conn, err := listenSSDP(ctx, ifi, "udp6", "::", func(conn *net.UDPConn) []func() error {
		p = ipv6.NewPacketConn(conn)
		return []func() error{
			func() error { return p.JoinGroup(ifi, &net.UDPAddr{IP: ssdpGroup6Link.AsSlice()}) },
			func() error { return p.JoinGroup(ifi, &net.UDPAddr{IP: ssdpGroup6Site.AsSlice()}) },
			func() error { return p.SetMulticastInterface(ifi) },
			// UDA 1.1 §1.1.2: a hop limit of 2 by default; the gizmo does not
			// route multicast, so its announcements stay on the LAN anyway.
			func() error { return p.SetMulticastHopLimit(2) },
			func() error { return p.SetMulticastLoopback(false) },
			func() error { return p.SetControlMessage(ipv6.FlagDst, true) },
		}
	})
	if err != nil {
		return nil, err
	}
	return &ssdpSocket{conn: conn, group: ssdpGroup6Link, loc: loc, read: func(b []byte) (int, net.Addr, bool, error) {
		n, cm, src, err := p.ReadFrom(b)
		return n, src, cm != nil && cm.Dst.IsMulticast(), err
	}}, nil
}

// listenSSDP4 opens the IPv4 SSDP socket on ifi: port 1900, the group
// 239.255.255.250 joined there only.
func listenSSDP4(ctx context.Context, ifi *net.Interface, loc string) (*ssdpSocket, error) {
	var p *ipv4.PacketConn
	conn, err := listenSSDP(ctx, ifi, "udp4", "0.0.0.0", func(conn *net.UDPConn) []func() error {
		p = ipv4.NewPacketConn(conn)
		return []func() error{
			func() error { return p.JoinGroup(ifi, &net.UDPAddr{IP: ssdpGroup4.AsSlice()}) },
			func() error { return p.SetMulticastInterface(ifi) },
			func() error { return p.SetMulticastTTL(2) },
			func() error { return p.SetMulticastLoopback(false) },
			func() error { return p.SetControlMessage(ipv4.FlagDst, true) },
		}
	})
	if err != nil {
		return nil, err
	}
	return &ssdpSocket{conn: conn, group: ssdpGroup4, loc: loc, read: func(b []byte) (int, net.Addr, bool, error) {
		n, cm, src, err := p.ReadFrom(b)
		return n, src, cm != nil && cm.Dst.IsMulticast(), err
	}}, nil
}

// listenSSDP opens a UDP socket of network on host, port 1900, bound to
// ifi, and runs the steps that setup returns for it: joining the groups,
// the multicast options. The socket is closed when a step fails.
func listenSSDP(ctx context.Context, ifi *net.Interface, network, host string, setup func(*net.UDPConn) []func() error) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.ReuseAddr, sockopt.BindToDevice(ifi.Name))}
	pc, err := lc.ListenPacket(ctx, network, net.JoinHostPort(host, strconv.Itoa(ssdpPort)))
	if err != nil {
		return nil, fmt.Errorf("upnp: SSDP on %s: %w", ifi.Name, err)
	}
	conn := pc.(*net.UDPConn)
	for _, f := range setup(conn) {
		if err := f(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("upnp: SSDP on %s: %w", ifi.Name, err)
		}
	}
	return conn, nil
}
