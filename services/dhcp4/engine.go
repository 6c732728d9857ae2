package dhcp4

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Lease is what the server reports about one client: a lease it granted,
// renewed or that ended, or (IP invalid, V6OnlyPreferred true) that the
// client was told to go IPv6-only and holds no IPv4 lease.
type Lease struct {
	MAC      string     // net.HardwareAddr.String()
	IP       netip.Addr // invalid when the client got option 108 instead
	Hostname string     // from option 81 or 12, one sanitized DNS label
	Expires  time.Time
	// V6OnlyPreferred is true when the reply carried option 108 (RFC 8925).
	V6OnlyPreferred bool
}

// Stats are the server's counters since it started.
type Stats struct {
	Offers, Acks, Naks          uint64
	Declines, Releases, Informs uint64
	// PoolExhausted counts DHCPDISCOVERs that got no offer because no
	// address was free.
	PoolExhausted uint64
	// Malformed counts packets that did not parse or were not an Ethernet
	// client's DHCP request.
	Malformed uint64
	// Ignored counts well-formed packets that needed no answer: another
	// server's business, a disabled plan, a foreign relay.
	Ignored uint64
	// V6OnlySent counts replies that carried option 108.
	V6OnlySent uint64
	// PersistErrors counts failed writes of the lease file.
	PersistErrors uint64
	// ClockSteps counts steps of the wall clock the leases were moved by.
	ClockSteps uint64
	// SourceMismatch counts unrelayed messages whose chaddr is not the
	// Ethernet source of their frame: one device speaking for another
	// (a RELEASE or DECLINE for its lease, say). Dropped.
	SourceMismatch uint64
	// Unverified counts unrelayed messages from a socket that shows no
	// Ethernet source (Config.Conn), whose chaddr cannot be checked.
	// Dropped.
	Unverified uint64
	// RateLimitedClient and RateLimitedPort count messages dropped by the
	// per-client limit and by the per-port limit on new clients (admit.go).
	RateLimitedClient, RateLimitedPort uint64
	// SocketDrops counts frames the kernel dropped because the server's
	// packet sockets were full (a burst faster than the readers).
	SocketDrops uint64
	// Leases is the number of current leases.
	Leases int
}

type counters struct {
	offers, acks, naks, declines, releases, informs   atomic.Uint64
	exhausted, malformed, ignored, v6only, persistErr atomic.Uint64

	clockSteps atomic.Uint64

	sourceMismatch, unverified, limitedClient, limitedPort, socketDrops atomic.Uint64
}

// outcome is what handling one request produced.
type outcome struct {
	reply *dhcpv4.DHCPv4
	// durable: the reply grants a lease and may only be sent once the
	// lease file holds it (a restart must keep every acknowledged lease).
	durable bool
	lease   *Lease // for OnLease, after the reply went out
	ended   *Lease // for OnRelease
}

// engine is the protocol logic: requests in, replies and lease changes out.
// It touches no socket and no file, so that it can be tested with packets
// built in memory and fuzzed.
type engine struct {
	log *slog.Logger
	c   counters

	mu      sync.Mutex
	plan    Plan // normalized
	t       *table
	pending []outcome // durable replies waiting for the next flush

	lastExhaustedLog time.Time

	// offset is the wall clock minus the monotonic clock (clock.go); nil
	// when the engine runs on a test's clock.
	offset     func() time.Duration
	lastOffset time.Duration
}

func newEngine(log *slog.Logger) *engine {
	return &engine{log: log, t: newTable()}
}

// setPlan installs p (validated by the caller) and returns the leases it
// ends.
func (e *engine) setPlan(p Plan) []*binding {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.plan = p.normalized()
	if !p.Enabled() {
		return nil
	}
	return e.t.configure(&e.plan)
}

var (
	errNotRequest  = errors.New("not a BOOTREQUEST")
	errNotEthernet = errors.New("not an Ethernet client hardware address")
	errNoType      = errors.New("no DHCP message type (BOOTP is not served)")
)

// checkRequest rejects what the server cannot serve at all.
func checkRequest(req *dhcpv4.DHCPv4) error {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return errNotRequest
	}
	if req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return errNotEthernet
	}
	if req.MessageType() == dhcpv4.MessageTypeNone {
		return errNoType
	}
	return nil
}

// addr4 converts a 4-byte option or header field; anything else (absent,
// wrong length, 0.0.0.0) is the invalid Addr.
func addr4(b []byte) netip.Addr {
	if len(b) == net.IPv4len {
		a := netip.AddrFrom4([4]byte(b))
		if !a.IsUnspecified() {
			return a
		}
	} else if len(b) == net.IPv6len {
		if v4 := net.IP(b).To4(); v4 != nil {
			return addr4(v4)
		}
	}
	return netip.Addr{}
}

// handle answers one request received at now.
func (e *engine) handle(req *dhcpv4.DHCPv4, now time.Time) outcome {
	if err := checkRequest(req); err != nil {
		e.c.malformed.Add(1)
		return outcome{}
	}
	mac := req.ClientHWAddr.String()

	e.mu.Lock()
	defer e.mu.Unlock()
	e.followClock()
	if !e.plan.Enabled() {
		e.c.ignored.Add(1)
		return outcome{}
	}
	// A relay agent on our own subnet is served as if the client were
	// local (RFC 2131 §4.1); one elsewhere relays for a network we do not
	// know.
	if g := addr4(req.GatewayIPAddr); g.IsValid() && !e.plan.Subnet().Contains(g) {
		e.c.ignored.Add(1)
		return outcome{}
	}

	var out outcome
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		out = e.discover(req, mac, now)
	case dhcpv4.MessageTypeRequest:
		out = e.request(req, mac, now)
	case dhcpv4.MessageTypeDecline:
		out = e.decline(req, mac, now)
	case dhcpv4.MessageTypeRelease:
		out = e.release(req, mac, now)
	case dhcpv4.MessageTypeInform:
		out = e.inform(req)
	default:
		// OFFER, ACK, NAK from another server and the like.
		e.c.ignored.Add(1)
	}
	if out.durable {
		e.pending = append(e.pending, out)
		return outcome{}
	}
	return out
}

// known reports whether the server holds a lease for mac, or held one (the
// binding stays for the client's next request), or a reservation: such a
// client skips its port's limit on new clients.
func (e *engine) known(mac string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.t.reserved[mac]; ok {
		return true
	}
	b := e.t.byMAC[mac]
	return b != nil && !b.Expires.IsZero()
}

// addressedToUs reports whether a datagram to dst is for this server: the
// limited broadcast (RFC 2131 §4.1), the subnet's broadcast, or the
// server's own address. A packet socket also sees datagrams to port 67 of
// other hosts (a bridge port hears them all), which the kernel would not
// deliver to the server.
func (e *engine) addressedToUs(dst netip.Addr) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.plan.Enabled() {
		return true // counted as ignored by handle
	}
	return dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || dst == e.plan.Server.Addr() || dst == Broadcast(e.plan.Subnet())
}

// v6Only is RFC 8925 §3.3: option 108 only to a client that lists it in its
// Parameter Request List, and only when the owner's policy for that host
// allows it.
func (e *engine) v6Only(req *dhcpv4.DHCPv4, mac string) bool {
	return req.ParameterRequestList().Has(dhcpv4.OptionIPv6OnlyPreferred) && e.plan.v6OnlyPreferred(mac)
}

func (e *engine) discover(req *dhcpv4.DHCPv4, mac string, now time.Time) outcome {
	hostname := clientHostname(req.Options)
	if e.v6Only(req, mac) {
		// RFC 8925 §3.3: offer no address (yiaddr 0.0.0.0) and allocate no
		// lease; the client will not configure IPv4. A lease it held
		// before the policy changed is over.
		r := e.reply(req, dhcpv4.MessageTypeOffer)
		r.UpdateOption(dhcpv4.OptIPv6OnlyPreferred(e.plan.V6OnlyWait))
		out := outcome{reply: r, lease: &Lease{MAC: mac, Hostname: hostname, V6OnlyPreferred: true}}
		if b := e.t.byMAC[mac]; b != nil {
			if b.Expires.After(now) {
				out.ended = leaseOf(b)
			}
			e.t.remove(b)
		}
		e.c.v6only.Add(1)
		e.c.offers.Add(1)
		e.log.Debug("dhcp4: IPv6-only preferred, no address offered", "mac", mac, "v6only_wait", e.plan.V6OnlyWait)
		return out
	}
	ip, ok := e.t.choose(mac, addr4(req.Options.Get(dhcpv4.OptionRequestedIPAddress)), now)
	if !ok {
		e.c.exhausted.Add(1)
		// One line per ten seconds: a storm must not become a log storm.
		if now.Sub(e.lastExhaustedLog) > 10*time.Second {
			e.lastExhaustedLog = now
			e.log.Warn("dhcp4: pool exhausted, no offer", "mac", mac,
				"pool", e.plan.PoolStart.String()+"-"+e.plan.PoolEnd.String(),
				"exhausted_total", e.c.exhausted.Load())
		}
		return outcome{}
	}
	b := e.t.take(mac, ip)
	// Duplicate or rapid DISCOVERs get the same address: choose returns
	// the held one, and the hold only ever moves forward.
	b.OfferedUntil = now.Add(offerHold)
	if hostname != "" {
		b.Hostname = hostname
	}
	r := e.reply(req, dhcpv4.MessageTypeOffer)
	r.YourIPAddr = net.IP(ip.AsSlice())
	e.addConfig(r, true)
	e.c.offers.Add(1)
	return outcome{reply: r}
}

// request follows RFC 2131 §4.3.2, which tells the client's state from
// the fields it sets.
func (e *engine) request(req *dhcpv4.DHCPv4, mac string, now time.Time) outcome {
	sid := addr4(req.Options.Get(dhcpv4.OptionServerIdentifier))
	requested := addr4(req.Options.Get(dhcpv4.OptionRequestedIPAddress))
	ciaddr := addr4(req.ClientIPAddr)
	switch {
	case sid.IsValid():
		// SELECTING: the client picked one server's offer.
		if sid != e.plan.Server.Addr() {
			// It picked another server: our offer is free again.
			if b := e.t.byMAC[mac]; b != nil {
				b.OfferedUntil = time.Time{}
				if b.Expires.IsZero() {
					e.t.remove(b) // only ever offered: forget it
				}
			}
			e.c.ignored.Add(1)
			return outcome{}
		}
		if !requested.IsValid() {
			requested = ciaddr // tolerated, though §4.3.2 says option 50
		}
		if !requested.IsValid() {
			e.c.malformed.Add(1)
			return outcome{}
		}
		return e.ackOrNak(req, mac, requested, now)
	case requested.IsValid():
		// INIT-REBOOT: the client wants to keep the address it remembers.
		if !e.plan.Subnet().Contains(requested) {
			return e.nak(req, "requested address is not on this network")
		}
		if e.v6Only(req, mac) {
			// RFC 8925 §3.2: the client restarts with a DHCPDISCOVER
			// after the NAK and gets option 108 with its offer.
			return e.nak(req, "IPv6-only preferred")
		}
		if b := e.t.byMAC[mac]; b != nil && b.IP != requested && b.Expires.After(now) {
			return e.nak(req, "client holds another address")
		}
		// The gizmo is the only DHCPv4 server on its LAN, so it answers
		// even for a client it has no record of (like dnsmasq's
		// dhcp-authoritative) instead of staying silent: the client gets
		// going at once rather than after its INIT-REBOOT timeout.
		return e.ackOrNak(req, mac, requested, now)
	case ciaddr.IsValid():
		// RENEWING (unicast) or REBINDING (broadcast): extend the lease.
		if !e.plan.Subnet().Contains(ciaddr) {
			return e.nak(req, "address is not on this network")
		}
		return e.ackOrNak(req, mac, ciaddr, now)
	default:
		e.c.malformed.Add(1)
		return outcome{}
	}
}

func (e *engine) ackOrNak(req *dhcpv4.DHCPv4, mac string, ip netip.Addr, now time.Time) outcome {
	if !e.t.usableBy(ip, mac, now) {
		return e.nak(req, "address not available")
	}
	// A reservation made while the host held another address takes effect
	// at its next renewal: the NAK sends it back to DHCPDISCOVER, which
	// offers the reserved address.
	if r, ok := e.t.reserved[mac]; ok && r != ip && e.t.usableBy(r, mac, now) {
		return e.nak(req, "this host has a reserved address")
	}
	b := e.t.take(mac, ip)
	// Wall clock in UTC only: the expiry is stored and compared across
	// restarts.
	b.Expires = now.Add(e.plan.LeaseTime).UTC().Round(0)
	b.OfferedUntil, b.restored = time.Time{}, false
	if h := clientHostname(req.Options); h != "" {
		b.Hostname = h
	}
	e.t.touch(b)

	r := e.reply(req, dhcpv4.MessageTypeAck)
	r.ClientIPAddr = req.ClientIPAddr
	r.YourIPAddr = net.IP(ip.AsSlice())
	e.addConfig(r, true)
	v6 := e.v6Only(req, mac)
	if v6 {
		// A renewing client ignores it (RFC 8925 §3.2 acts on it only
		// in offers and INIT-REBOOT), but §3.3 still has the server
		// include it whenever it is requested and allowed.
		r.UpdateOption(dhcpv4.OptIPv6OnlyPreferred(e.plan.V6OnlyWait))
		e.c.v6only.Add(1)
	}
	e.c.acks.Add(1)
	e.log.Debug("dhcp4: ack", "mac", mac, "ip", ip, "hostname", b.Hostname, "expires", b.Expires)
	return outcome{reply: r, durable: true, lease: leaseOf(b)}
}

func (e *engine) nak(req *dhcpv4.DHCPv4, why string) outcome {
	r := e.reply(req, dhcpv4.MessageTypeNak)
	r.UpdateOption(dhcpv4.OptMessage(why))
	// RFC 2131 §4.1: a relay must broadcast a NAK to the client.
	if addr4(req.GatewayIPAddr).IsValid() {
		r.SetBroadcast()
	}
	e.c.naks.Add(1)
	e.log.Debug("dhcp4: nak", "mac", req.ClientHWAddr.String(), "why", why)
	return outcome{reply: r}
}

// ours reports whether a DECLINE or RELEASE is for this server. Both
// carry the server identifier (RFC 2131 table 5: MUST).
func (e *engine) ours(req *dhcpv4.DHCPv4) bool {
	sid := addr4(req.Options.Get(dhcpv4.OptionServerIdentifier))
	return !sid.IsValid() || sid == e.plan.Server.Addr()
}

// decline is RFC 2131 §4.3.3: the client found the address in use (by ARP),
// so it is taken out of the pool for a while and the owner is told.
func (e *engine) decline(req *dhcpv4.DHCPv4, mac string, now time.Time) outcome {
	ip := addr4(req.Options.Get(dhcpv4.OptionRequestedIPAddress))
	if !e.ours(req) || !ip.IsValid() || !e.t.decline(mac, ip, now) {
		e.c.ignored.Add(1)
		return outcome{}
	}
	e.c.declines.Add(1)
	e.log.Warn("dhcp4: client declined its address; another host on the LAN uses it", "mac", mac, "ip", ip, "unusable_for", declineHold)
	return outcome{ended: &Lease{MAC: mac, IP: ip}}
}

// release is RFC 2131 §4.3.4: the lease ends now; the binding stays so
// that the client gets the same address next time.
func (e *engine) release(req *dhcpv4.DHCPv4, mac string, now time.Time) outcome {
	ip := addr4(req.ClientIPAddr)
	b := e.t.byMAC[mac]
	if !e.ours(req) || b == nil || b.IP != ip || !b.active(now) {
		e.c.ignored.Add(1)
		return outcome{}
	}
	ended := leaseOf(b)
	b.Expires, b.OfferedUntil, b.restored = now.UTC().Round(0), time.Time{}, false
	e.t.touch(b)
	e.c.releases.Add(1)
	return outcome{ended: ended}
}

// inform is RFC 2131 §4.3.5: configuration for a client that has its
// address already; no yiaddr, no lease time, no lease.
func (e *engine) inform(req *dhcpv4.DHCPv4) outcome {
	r := e.reply(req, dhcpv4.MessageTypeAck)
	r.ClientIPAddr = req.ClientIPAddr
	e.addConfig(r, false)
	e.c.informs.Add(1)
	return outcome{reply: r}
}

// reply starts a reply to req (RFC 2131 §4.3.1 table 3).
func (e *engine) reply(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	r := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		ClientHWAddr:  req.ClientHWAddr,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		GatewayIPAddr: req.GatewayIPAddr,
		Options:       dhcpv4.Options{},
	}
	r.UpdateOption(dhcpv4.OptMessageType(typ))
	r.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(e.plan.Server.Addr().AsSlice())))
	// RFC 6842: echo the client identifier. RFC 3046 §2.2: echo the relay
	// agent information.
	for _, o := range []dhcpv4.OptionCode{dhcpv4.OptionClientIdentifier, dhcpv4.OptionRelayAgentInformation} {
		if v := req.Options.Get(o); v != nil {
			r.Options[o.Code()] = v
		}
	}
	return r
}

// addConfig adds the network configuration; withLease adds the lease and
// renewal times (RFC 2132 §9.2, §9.11, §9.12).
func (e *engine) addConfig(r *dhcpv4.DHCPv4, withLease bool) {
	p := &e.plan
	sub := p.Subnet()
	r.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(sub.Bits(), 32)))
	r.UpdateOption(dhcpv4.OptBroadcastAddress(net.IP(Broadcast(sub).AsSlice())))
	if p.Router.IsValid() {
		r.UpdateOption(dhcpv4.OptRouter(net.IP(p.Router.AsSlice())))
	}
	if len(p.DNS) > 0 {
		ips := make([]net.IP, len(p.DNS))
		for i, d := range p.DNS {
			ips[i] = net.IP(d.AsSlice())
		}
		r.UpdateOption(dhcpv4.OptDNS(ips...))
	}
	if p.Domain != "" {
		r.UpdateOption(dhcpv4.OptDomainName(p.Domain))
	}
	if len(p.NTP) > 0 {
		ips := make([]net.IP, len(p.NTP))
		for i, n := range p.NTP {
			ips[i] = net.IP(n.AsSlice())
		}
		r.UpdateOption(dhcpv4.OptNTPServers(ips...))
	}
	if withLease {
		r.UpdateOption(dhcpv4.OptIPAddressLeaseTime(p.LeaseTime))
		r.UpdateOption(dhcpv4.OptRenewTimeValue(p.LeaseTime / 2))
		r.UpdateOption(dhcpv4.OptRebindingTimeValue(p.LeaseTime * 7 / 8))
	}
}

func leaseOf(b *binding) *Lease {
	return &Lease{MAC: b.MAC, IP: b.IP, Hostname: b.Hostname, Expires: b.Expires}
}
