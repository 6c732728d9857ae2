// Package dhcp4load is a DHCPv4 load generator. It plays a relay agent
// (RFC 2131 §4.1, giaddr set) for many simulated clients, each running the
// four-message exchange DISCOVER, OFFER, REQUEST, ACK. Because replies go to
// the relay's address rather than to a broadcast, any server — the gizmo's
// or Kea's kea-dhcp4 — can be driven over loopback, without veths and
// without raw sockets, and measured the same way.
package dhcp4load

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Config describes one run.
type Config struct {
	// Conn is bound to Relay, port 67 (where servers send relayed replies).
	Conn net.PacketConn
	// Relay is the giaddr the simulated relay puts in every message.
	Relay netip.Addr
	// Server is where requests go.
	Server netip.AddrPort
	// Clients is how many distinct clients (MAC addresses) to lease for.
	Clients int
	// Window is how many exchanges are in flight at once (default 256).
	Window int
	// Timeout is when a message is sent again (default 1 s); Retries is
	// how often before the client counts as failed (default 4).
	Timeout time.Duration
	Retries int
	// Tag is the second octet of the simulated MAC addresses, so that
	// separate runs against one server are separate clients.
	Tag byte
}

// Result is what a run achieved.
type Result struct {
	Clients     int
	Leased      int // clients that got an ACK
	Failed      int // clients that gave up after Retries
	Naks        int
	Retransmits int
	// Duplicates counts addresses that were ACKed to more than one client.
	Duplicates int
	Elapsed    time.Duration
	// Leases maps each leased client's MAC to its address.
	Leases map[string]netip.Addr
}

// LeasesPerSecond is the throughput of the run.
func (r Result) LeasesPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Leased) / r.Elapsed.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("%d/%d leased in %v (%.0f leases/s), %d failed, %d NAKs, %d retransmits, %d duplicate addresses",
		r.Leased, r.Clients, r.Elapsed.Round(time.Millisecond), r.LeasesPerSecond(), r.Failed, r.Naks, r.Retransmits, r.Duplicates)
}

type phase uint8

const (
	idle phase = iota
	discovering
	requesting
	done
	failed
)

type client struct {
	phase    phase
	tries    int
	sentAt   time.Time
	offered  netip.Addr
	serverID netip.Addr
}

type reply struct {
	idx      int
	typ      dhcpv4.MessageType
	yiaddr   netip.Addr
	serverID netip.Addr
}

// Run leases an address for every client and returns when all have
// finished (ACKed or given up) or ctx is done.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Conn == nil || !cfg.Relay.Is4() || !cfg.Server.IsValid() || cfg.Clients <= 0 {
		return Result{}, errors.New("dhcp4load: need Conn, an IPv4 Relay, Server and Clients")
	}
	if cfg.Window <= 0 {
		cfg.Window = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 4
	}
	salt := rand.Uint32()
	clients := make([]client, cfg.Clients)
	dst := net.UDPAddrFromAddrPort(cfg.Server)

	replies := make(chan reply, 4096)
	recvCtx, stopRecv := context.WithCancel(ctx)
	recvDone := make(chan struct{})
	// The receiver must be gone before Run returns: a later Run on the same
	// socket would otherwise lose its first replies to it.
	defer func() {
		stopRecv()
		<-recvDone
	}()
	if uc, ok := cfg.Conn.(*net.UDPConn); ok {
		// Replies arrive in bursts as large as the window; the default
		// buffer would drop some and turn them into retransmissions.
		uc.SetReadBuffer(4 << 20)
		uc.SetWriteBuffer(4 << 20)
	}
	go func() {
		defer close(recvDone)
		receive(recvCtx, cfg.Conn, salt, cfg.Clients, cfg.Tag, replies)
	}()

	res := Result{Clients: cfg.Clients, Leases: make(map[string]netip.Addr, cfg.Clients)}
	owner := make(map[netip.Addr]int, cfg.Clients)
	inflight := make(map[int]struct{}, cfg.Window)
	next := 0
	start := time.Now()
	var sendErr error

	send := func(i int, now time.Time) {
		c := &clients[i]
		b := message(cfg, salt, i, c)
		if _, err := cfg.Conn.WriteTo(b, dst); err != nil && sendErr == nil {
			sendErr = err
		}
		c.sentAt = now
		c.tries++
	}
	startClient := func(i int, now time.Time) {
		clients[i] = client{phase: discovering}
		inflight[i] = struct{}{}
		send(i, now)
	}
	finish := func(i int, p phase) {
		clients[i].phase = p
		delete(inflight, i)
	}

	tick := time.NewTicker(cfg.Timeout / 4)
	defer tick.Stop()
	for {
		now := time.Now()
		for next < cfg.Clients && len(inflight) < cfg.Window {
			startClient(next, now)
			next++
		}
		if next == cfg.Clients && len(inflight) == 0 {
			break
		}
		if sendErr != nil {
			return res, fmt.Errorf("dhcp4load: send: %w", sendErr)
		}
		select {
		case <-ctx.Done():
			res.Elapsed = time.Since(start)
			return res, ctx.Err()
		case r := <-replies:
			c := &clients[r.idx]
			now := time.Now()
			switch {
			case r.typ == dhcpv4.MessageTypeOffer && c.phase == discovering && r.yiaddr.IsValid():
				c.phase, c.tries = requesting, 0
				c.offered, c.serverID = r.yiaddr, r.serverID
				send(r.idx, now)
			case r.typ == dhcpv4.MessageTypeAck && c.phase == requesting:
				mac := macOf(cfg.Tag, r.idx).String()
				res.Leases[mac] = r.yiaddr
				if o, ok := owner[r.yiaddr]; ok && o != r.idx {
					res.Duplicates++
				}
				owner[r.yiaddr] = r.idx
				res.Leased++
				finish(r.idx, done)
			case r.typ == dhcpv4.MessageTypeNak && c.phase == requesting:
				res.Naks++
				c.phase, c.tries = discovering, 0
				send(r.idx, now)
			}
		case now := <-tick.C:
			for i := range inflight {
				c := &clients[i]
				if now.Sub(c.sentAt) < cfg.Timeout {
					continue
				}
				if c.tries > cfg.Retries {
					res.Failed++
					finish(i, failed)
					continue
				}
				res.Retransmits++
				send(i, now)
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func macOf(tag byte, i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, tag, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// message is the client's next message in its current phase.
func message(cfg Config, salt uint32, i int, c *client) []byte {
	var xid dhcpv4.TransactionID
	binary.BigEndian.PutUint32(xid[:], uint32(i)^salt)
	d := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        1,
		HopCount:      1,
		TransactionID: xid,
		GatewayIPAddr: net.IP(cfg.Relay.AsSlice()),
		ClientHWAddr:  macOf(cfg.Tag, i),
		Options:       dhcpv4.Options{},
	}
	d.UpdateOption(dhcpv4.OptParameterRequestList(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter,
		dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName, dhcpv4.OptionIPAddressLeaseTime))
	if c.phase == requesting {
		d.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
		d.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IP(c.offered.AsSlice())))
		if c.serverID.IsValid() {
			d.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(c.serverID.AsSlice())))
		}
	} else {
		d.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeDiscover))
	}
	return d.ToBytes()
}

// receive parses replies and hands those for our clients to Run.
func receive(ctx context.Context, conn net.PacketConn, salt uint32, n int, tag byte, out chan<- reply) {
	buf := make([]byte, 2048)
	for {
		if ctx.Err() != nil {
			return
		}
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		m, _, err := conn.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // the read deadline: look at ctx again
		}
		d, err := dhcpv4.FromBytes(buf[:m])
		if err != nil || d.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		i := int(binary.BigEndian.Uint32(d.TransactionID[:]) ^ salt)
		if i < 0 || i >= n || d.ClientHWAddr.String() != macOf(tag, i).String() {
			continue
		}
		r := reply{idx: i, typ: d.MessageType()}
		if y, ok := netip.AddrFromSlice(d.YourIPAddr.To4()); ok && !y.IsUnspecified() {
			r.yiaddr = y
		}
		if s, ok := netip.AddrFromSlice(d.ServerIdentifier().To4()); ok {
			r.serverID = s
		}
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
	}
}
