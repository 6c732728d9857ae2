package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/internal/persist"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// v4Lease is the WAN's DHCPv4 lease with absolute deadlines.
type v4Lease struct {
	Addr    netip.Prefix
	Router  netip.Addr
	DNS     []netip.Addr
	NTP     []netip.Addr // option 42, RFC 2132 §8.3
	Server  netip.Addr
	T1, T2  time.Time
	Expires time.Time
	ack     *dhcpv4.DHCPv4
	// received is when the ACK arrived; the lease's times count from it.
	received time.Time
}

// IPv4Lease is the WAN's DHCPv4 lease as the service reports it.
type IPv4Lease struct {
	Addr    netip.Prefix // the leased address with the subnet's length
	Router  netip.Addr
	DNS     []netip.Addr
	NTP     []netip.Addr // option 42, RFC 2132 §8.3
	Expires time.Time
	// Acquired is when the server's ACK arrived: a stored lease that no
	// server confirmed in this run keeps its old time.
	Acquired time.Time
}

func (l *v4Lease) public() *IPv4Lease {
	if l == nil {
		return nil
	}
	return &IPv4Lease{Addr: l.Addr, Router: l.Router, DNS: slices.Clone(l.DNS), NTP: slices.Clone(l.NTP), Expires: l.Expires, Acquired: l.received}
}

// DHCPv4 lease rejection reasons, the labels of Stats.InvalidDHCPv4.
const (
	v4NoAddress = "no-address"
	v4NoLease   = "no-lease-time"
	v4BadMask   = "bad-subnet-mask"
	v4NoServer  = "no-server-identifier"
)

// leaseRejected is a DHCPv4 lease the WAN refused.
func leaseRejected(reason, detail string) error {
	return &rejection{"dhcpv4 lease", reason, detail}
}

// leaseFromACK validates an ACK received at now and turns it into a lease
// (RFC 2131 §4.3.1 Table 3 lists what an ACK must carry; §4.4.5 gives the
// T1/T2 defaults of 0.5 and 0.875 times the lease).
func leaseFromACK(ack *dhcpv4.DHCPv4, now time.Time) (*v4Lease, error) {
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		return nil, leaseRejected(v4NoAddress, "not an ACK")
	}
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !ip.IsGlobalUnicast() || ip.IsMulticast() {
		return nil, leaseRejected(v4NoAddress, fmt.Sprint(ack.YourIPAddr))
	}
	bits := 32
	if m := ack.SubnetMask(); m != nil {
		ones, size := m.Size()
		if size != 32 || ones < 1 || ones > 32 {
			return nil, leaseRejected(v4BadMask, m.String())
		}
		bits = ones
	}
	srv, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4())
	if !ok || !srv.IsValid() || srv.IsUnspecified() {
		return nil, leaseRejected(v4NoServer, "")
	}
	lt := ack.IPAddressLeaseTime(0)
	if lt <= 0 {
		return nil, leaseRejected(v4NoLease, "")
	}
	t1 := ack.IPAddressRenewalTime(lt / 2)
	t2 := ack.IPAddressRebindingTime(lt / 8 * 7) // lt*7 would overflow for long leases
	if t1 <= 0 || t2 <= 0 || t1 > t2 || t2 > lt {
		t1, t2 = lt/2, lt/8*7
	}
	l := &v4Lease{Addr: netip.PrefixFrom(ip, bits), Server: srv, ack: ack, received: now}
	if lt >= time.Duration(0xffffffff)*time.Second {
		l.T1, l.T2, l.Expires = farFuture, farFuture, farFuture
	} else {
		l.T1, l.T2, l.Expires = now.Add(t1), now.Add(t2), now.Add(lt)
	}
	for _, r := range ack.Router() {
		if a, ok := netip.AddrFromSlice(r.To4()); ok && a.IsGlobalUnicast() {
			l.Router = a
			break
		}
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok && a.IsValid() && !a.IsUnspecified() {
			l.DNS = append(l.DNS, a)
		}
	}
	for _, n := range ack.NTPServers() {
		if a, ok := netip.AddrFromSlice(n.To4()); ok && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			l.NTP = append(l.NTP, a)
		}
	}
	return l, nil
}

// storedV4 is the persisted lease: the ACK as received, so that a restart
// can verify it with INIT-REBOOT (RFC 2131 §3.2) and keep the address.
type storedV4 struct {
	ACK      []byte    `json:"ack"`
	Received time.Time `json:"received"`
}

const v4LeaseFile = "wan-dhcp4.json"

// dhcp4Client keeps the uplink's IPv4 lease: DORA, renew at T1 (unicast to
// the server), rebind at T2 (broadcast), verification after a link flap
// (INIT-REBOOT), and the address and default route in the kernel.
type dhcp4Client struct {
	ifname   string
	stateDir string
	log      *slog.Logger
	stats    *counters
	emit     func(*IPv4Lease)
	linkUp   <-chan struct{}
	// clockTrusted says whether the wall clock can judge a stored lease
	// (Config.ClockTrusted).
	clockTrusted func() bool

	lease *v4Lease
}

// Exchange timing. RFC 2131 §4.1: retransmit with exponential backoff from
// 4 s; §4.4.5: while renewing or rebinding, retry after half the remaining
// time, but not sooner than 60 s.
const (
	v4ExchangeTimeout = 4 * time.Second
	v4ExchangeRetries = 3
	v4MinRetry        = 60 * time.Second
	v4InitialBackoff  = 4 * time.Second
	v4MaxBackoff      = 64 * time.Second
)

func (c *dhcp4Client) newClient(server netip.Addr) (*nclient4.Client, error) {
	opts := []nclient4.ClientOpt{nclient4.WithTimeout(v4ExchangeTimeout), nclient4.WithRetry(v4ExchangeRetries)}
	if server.IsValid() {
		opts = append(opts, nclient4.WithServerAddr(&net.UDPAddr{IP: server.AsSlice(), Port: nclient4.ServerPort}))
	}
	// A fresh socket per exchange: a link flap can kill the receive loop of
	// a long-lived one.
	cl, err := nclient4.New(c.ifname, opts...)
	if err != nil {
		return nil, fmt.Errorf("wan: dhcpv4 on %s: %w", c.ifname, err)
	}
	return cl, nil
}

func (c *dhcp4Client) run(ctx context.Context) {
	if l := c.loadLease(time.Now()); l != nil {
		// RFC 2131 §3.2: a client that remembers its address asks for it
		// again with a broadcast REQUEST (INIT-REBOOT).
		// Without an answer it may keep using the lease until it ends.
		c.lease = l
		nl, err := c.verify(ctx, l, initReboot)
		var nak *nclient4.ErrNak
		switch {
		case err == nil:
			c.bind(nl)
		case errors.As(err, &nak):
			c.log.Info("wan: dhcpv4 stored lease refused", "addr", l.Addr)
			c.drop()
		case c.clockTrusted == nil || c.clockTrusted():
			c.log.Info("wan: dhcpv4 stored lease not confirmed, using it until it ends", "addr", l.Addr, "err", err)
			c.bind(l)
		default:
			// "Until it ends" needs a clock to tell: after a reboot
			// without a real-time clock, the lease's deadlines are
			// compared with a time that may be days behind, and an
			// expired lease would look valid. Only the server's ACK can
			// confirm it then. The kernel keeps whatever address it
			// still holds until its own lifetime (set from the lease)
			// ends, so nothing is removed either.
			c.log.Info("wan: dhcpv4 stored lease not confirmed and the clock is not synchronised, not using it", "addr", l.Addr, "err", err)
			c.lease = nil
		}
	}
	backoff := v4InitialBackoff
	for ctx.Err() == nil {
		if c.lease == nil {
			l, err := c.discover(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				c.stats.Add(func(s *Stats) { s.DHCPv4Failures++ })
				c.log.Info("wan: dhcpv4 no lease yet", "err", err, "retry", backoff)
				if !c.sleep(ctx, backoff, true) {
					return
				}
				backoff = min(2*backoff, v4MaxBackoff)
				continue
			}
			backoff = v4InitialBackoff
			c.bind(l)
		}
		c.keep(ctx)
	}
}

// sleep waits d, or until the link comes back up (when wake is set) or ctx
// ends; it returns false when ctx ended.
func (c *dhcp4Client) sleep(ctx context.Context, d time.Duration, wake bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	lu := c.linkUp
	if !wake {
		lu = nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-lu:
	}
	return true
}

// keep holds the current lease until it is lost: renew from T1, rebind from
// T2, drop at expiry or NAK. A link-up event verifies the lease at once.
func (c *dhcp4Client) keep(ctx context.Context) {
	for c.lease != nil && ctx.Err() == nil {
		now := time.Now()
		l := c.lease
		switch {
		case !now.Before(l.Expires):
			c.log.Warn("wan: dhcpv4 lease expired", "addr", l.Addr)
			c.drop()
			return
		case now.Before(l.T1):
			t := time.NewTimer(l.T1.Sub(now))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-c.linkUp:
				t.Stop()
				// The link flapped: perhaps we are on another network
				// now; confirm the address (RFC 2131 §3.7, §4.3.2).
				c.step(ctx, initReboot)
				continue
			}
		case now.Before(l.T2):
			c.step(ctx, renewing)
		default:
			c.step(ctx, rebinding)
		}
	}
}

// step makes one attempt to extend or confirm the lease and waits before
// the next one if it got no answer.
func (c *dhcp4Client) step(ctx context.Context, mode verifyMode) {
	l := c.lease
	nl, err := c.verify(ctx, l, mode)
	var nak *nclient4.ErrNak
	switch {
	case err == nil && nl != nil:
		c.bind(nl)
	case errors.As(err, &nak):
		c.stats.Add(func(s *Stats) { s.DHCPv4Naks++ })
		c.log.Warn("wan: dhcpv4 NAK, starting over", "addr", l.Addr)
		c.drop()
	case ctx.Err() != nil:
	default:
		end := l.Expires
		if mode == renewing {
			end = l.T2
		}
		wait := max(time.Until(end)/2, v4MinRetry)
		wait = min(wait, max(time.Until(end), 0))
		c.log.Info("wan: dhcpv4 no answer", "mode", mode, "err", err, "retry", wait)
		c.sleep(ctx, wait, true)
	}
}

func (c *dhcp4Client) discover(ctx context.Context) (*v4Lease, error) {
	cl, err := c.newClient(netip.Addr{})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	c.stats.Add(func(s *Stats) { s.DHCPv4Discovers++ })
	res, err := cl.Request(ctx, dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionNTPServers))
	if err != nil {
		return nil, fmt.Errorf("wan: dhcpv4 DORA on %s: %w", c.ifname, err)
	}
	return c.accept(res.ACK)
}

// verifyMode is how a REQUEST for an existing lease is sent (RFC 2131
// §4.3.2, §4.4.5).
type verifyMode int

const (
	renewing   verifyMode = iota // from T1: unicast to the server, ciaddr set
	rebinding                    // from T2: broadcast, ciaddr set
	initReboot                   // after a restart or a link flap: broadcast, requested IP option, ciaddr 0
)

func (m verifyMode) String() string {
	return [...]string{"renewing", "rebinding", "init-reboot"}[m]
}

// verify sends a REQUEST for l in the given mode. A NAK comes back as
// *nclient4.ErrNak.
func (c *dhcp4Client) verify(ctx context.Context, l *v4Lease, mode verifyMode) (*v4Lease, error) {
	server := netip.Addr{}
	if mode == renewing {
		server = l.Server
	}
	cl, err := c.newClient(server)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		return nil, err
	}
	var req *dhcpv4.DHCPv4
	if mode == initReboot {
		// §4.3.2 INIT-REBOOT: no server identifier, ciaddr 0, the
		// address in 'requested IP address'.
		req, err = dhcpv4.New(
			dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithHwAddr(cl.InterfaceAddr()),
			dhcpv4.WithTransactionID(xid),
			dhcpv4.WithBroadcast(true),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(l.Addr.Addr().AsSlice())),
			dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)),
			dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionNTPServers),
		)
	} else {
		req, err = dhcpv4.NewRenewFromAck(l.ack, dhcpv4.WithTransactionID(xid),
			dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)),
			dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionNTPServers))
	}
	if err != nil {
		return nil, err
	}
	if mode == renewing {
		c.stats.Add(func(s *Stats) { s.DHCPv4Renews++ })
	} else {
		c.stats.Add(func(s *Stats) { s.DHCPv4Rebinds++ })
	}
	resp, err := cl.SendAndRead(ctx, cl.RemoteAddr(), req, nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
	if err != nil {
		return nil, err
	}
	if resp.MessageType() == dhcpv4.MessageTypeNak {
		return nil, &nclient4.ErrNak{Nak: resp}
	}
	return c.accept(resp)
}

func (c *dhcp4Client) accept(ack *dhcpv4.DHCPv4) (*v4Lease, error) {
	l, err := leaseFromACK(ack, time.Now())
	if err != nil {
		reason := reasonOf(err)
		c.stats.Add(func(s *Stats) {
			if s.InvalidDHCPv4 == nil {
				s.InvalidDHCPv4 = map[string]uint64{}
			}
			s.InvalidDHCPv4[reason]++
		})
		c.log.Warn("wan: dhcpv4 rejected lease", "reason", reason, "err", err)
		return nil, err
	}
	c.stats.Add(func(s *Stats) { s.DHCPv4Acks++ })
	return l, nil
}

// bind installs l in the kernel and reports it.
func (c *dhcp4Client) bind(l *v4Lease) {
	old := c.lease
	if old != nil && old.Addr != l.Addr {
		c.uninstall(old)
	}
	c.lease = l
	if err := c.install(l); err != nil {
		c.log.Error("wan: dhcpv4 install", "err", err)
	}
	c.store(l)
	c.log.Info("wan: dhcpv4 lease", "addr", l.Addr, "router", l.Router, "dns", l.DNS,
		"t1", time.Until(l.T1).Round(time.Second), "expires", time.Until(l.Expires).Round(time.Second))
	c.emit(l.public())
}

func (c *dhcp4Client) drop() {
	if c.lease == nil {
		return
	}
	c.uninstall(c.lease)
	c.lease = nil
	c.store(nil)
	c.emit(nil)
}

func (c *dhcp4Client) install(l *v4Lease) error {
	link, err := netlink.LinkByName(c.ifname)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: l.Addr.Addr().AsSlice(), Mask: net.CIDRMask(l.Addr.Bits(), 32)}}
	// Kernel lifetimes make the address vanish by itself if the gizmo dies
	// and does not come back before the lease ends.
	if !l.Expires.Equal(farFuture) {
		secs := int(max(time.Until(l.Expires), time.Second) / time.Second)
		a.ValidLft, a.PreferedLft = secs, secs
	}
	if err := netlink.AddrReplace(link, a); err != nil {
		return fmt.Errorf("wan: add %v to %s: %w", l.Addr, c.ifname, err)
	}
	if !l.Router.IsValid() {
		return nil
	}
	r := defaultRoute4(link.Attrs().Index, l)
	if err := netlink.RouteReplace(&r); err != nil {
		return fmt.Errorf("wan: default route via %v: %w", l.Router, err)
	}
	return nil
}

func defaultRoute4(ifindex int, l *v4Lease) netlink.Route {
	r := netlink.Route{
		LinkIndex: ifindex,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        l.Router.AsSlice(),
		Protocol:  unix.RTPROT_DHCP,
		Family:    unix.AF_INET,
		Table:     unix.RT_TABLE_MAIN,
	}
	// A router outside the leased subnet (e.g. a /32 lease) is still on
	// the link.
	if !l.Addr.Contains(l.Router) {
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	return r
}

func (c *dhcp4Client) uninstall(l *v4Lease) {
	link, err := netlink.LinkByName(c.ifname)
	if err != nil {
		return
	}
	if l.Router.IsValid() {
		r := defaultRoute4(link.Attrs().Index, l)
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			c.log.Debug("wan: dhcpv4 remove route", "err", err)
		}
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: l.Addr.Addr().AsSlice(), Mask: net.CIDRMask(l.Addr.Bits(), 32)}}
	if err := netlink.AddrDel(link, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		c.log.Debug("wan: dhcpv4 remove address", "err", err)
	}
}

func (c *dhcp4Client) store(l *v4Lease) {
	if c.stateDir == "" {
		return
	}
	var s storedV4
	if l != nil {
		s = storedV4{ACK: l.ack.ToBytes(), Received: l.received}
	}
	if err := persist.WriteJSON(filepath.Join(c.stateDir, v4LeaseFile), s); err != nil {
		c.log.Error("wan: dhcpv4 store lease", "err", err)
	}
}

func (c *dhcp4Client) loadLease(now time.Time) *v4Lease {
	if c.stateDir == "" {
		return nil
	}
	var s storedV4
	found, err := persist.ReadJSON(filepath.Join(c.stateDir, v4LeaseFile), &s)
	if err != nil {
		c.log.Error("wan: dhcpv4 ignoring stored lease", "err", err)
		return nil
	}
	if !found || len(s.ACK) == 0 {
		return nil
	}
	ack, err := dhcpv4.FromBytes(s.ACK)
	if err != nil {
		c.log.Error("wan: dhcpv4 stored lease does not parse", "err", err)
		return nil
	}
	// The stored times are wall-clock times. Anchored on now's monotonic
	// reading, the lease's deadlines no longer move when the clock is
	// stepped later (NTP after a reboot without a real-time clock).
	l, err := leaseFromACK(ack, now.Add(s.Received.Sub(now)))
	if err != nil || !now.Before(l.Expires) {
		return nil
	}
	return l
}
