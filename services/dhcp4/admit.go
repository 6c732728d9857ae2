package dhcp4

import (
	"bytes"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// The server's rate limits on the LAN. A client sends a handful of
// messages per exchange (RFC 2131 §4.1: DISCOVER, REQUEST, retransmitted
// after 4, 8, 16 s), so each client gets a small burst and a slow refill.
// A device that invents a new MAC for every DISCOVER escapes that; what it
// cannot escape is its port: messages from clients the server has no
// lease for draw on a budget per ingress port (a bridge port of lan0, or
// lan0 itself when it is not a bridge). Clients with a lease skip the
// port's budget, so a flood on one port does not keep the hosts there from
// renewing. With offers held offerHold (60 s), the port's budget bounds the
// addresses a flood keeps offered to portBurst + portRate·offerHold (76),
// below a /25's pool; a new host on the flooding port still gets a DISCOVER
// through within seconds, a host on another port at once.
const (
	clientBurst = 8
	clientRate  = 0.5 // per second
	portBurst   = 16
	portRate    = 1 // new clients per second and port
	// maxClientBuckets bounds the per-client state. Only clients that got
	// past their port's budget get a bucket, so a flood fills it at
	// portRate; a bucket that has filled up again holds nothing and goes.
	maxClientBuckets = 4096
)

// Reasons a message is rate limited; the keys of Stats.RateLimited.
const (
	LimitClient = "client" // the client (MAC) sent too many
	LimitPort   = "port"   // too many new clients on its port
)

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b for the time since its last use and takes a token.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	b.refill(now, rate, burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if now.After(b.last) {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
		b.last = now
	}
}

// limiter holds the per-client and per-port buckets. Safe for concurrent
// use.
type limiter struct {
	mu      sync.Mutex
	clients map[[6]byte]*bucket
	ports   map[int]*bucket
}

func newLimiter() *limiter {
	return &limiter{clients: map[[6]byte]*bucket{}, ports: map[int]*bucket{}}
}

// allow decides whether a message from client mac on port may be served at
// now; known: the server holds a lease (or a reservation) for mac. It
// returns "" or the limit (LimitClient, LimitPort) the message hit.
func (l *limiter) allow(port int, mac [6]byte, known bool, now time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	cb := l.clients[mac]
	if cb == nil {
		if !known {
			pb := l.ports[port]
			if pb == nil {
				pb = &bucket{tokens: portBurst, last: now}
				l.ports[port] = pb
			}
			if !pb.take(now, portRate, portBurst) {
				return LimitPort
			}
		}
		if len(l.clients) >= maxClientBuckets && !l.prune(now) {
			return LimitClient
		}
		cb = &bucket{tokens: clientBurst, last: now}
		l.clients[mac] = cb
	}
	if !cb.take(now, clientRate, clientBurst) {
		return LimitClient
	}
	return ""
}

// prune forgets the client buckets that are full again, and reports
// whether that made room.
func (l *limiter) prune(now time.Time) bool {
	for mac, b := range l.clients {
		if b.refill(now, clientRate, clientBurst); b.tokens >= clientBurst {
			delete(l.clients, mac)
		}
	}
	return len(l.clients) < maxClientBuckets
}

// admit applies the checks a message from the LAN must pass before the
// protocol sees it, and counts what it drops.
func (s *Service) admit(req *dhcpv4.DHCPv4, in inbound, now time.Time) bool {
	switch checkSource(req, in) {
	case dropUnverified:
		s.e.c.unverified.Add(1)
		return false
	case dropSourceMismatch:
		s.e.c.sourceMismatch.Add(1)
		s.log.Debug("dhcp4: chaddr is not the frame's source; dropped", "chaddr", req.ClientHWAddr, "src", in.src, "type", req.MessageType())
		return false
	}
	if !in.l2 {
		return true // relayed over a plain socket: no port to count by
	}
	if !s.e.addressedToUs(in.dst) {
		s.e.c.ignored.Add(1)
		return false
	}
	// A relay on the LAN speaks for many clients: each is counted by its
	// chaddr, on the relay's port.
	client := in.src
	if addr4(req.GatewayIPAddr).IsValid() && len(req.ClientHWAddr) == 6 {
		client = req.ClientHWAddr
	}
	if len(client) != 6 {
		return false
	}
	switch s.limit.allow(in.port, [6]byte(client), s.e.known(client.String()), now) {
	case LimitClient:
		s.e.c.limitedClient.Add(1)
		return false
	case LimitPort:
		s.e.c.limitedPort.Add(1)
		return false
	}
	return true
}

// Why checkSource drops a message.
const (
	dropUnverified     = "unverified"
	dropSourceMismatch = "source_mismatch"
)

// checkSource is the rule that ties a client to its frames: an unrelayed
// message (giaddr 0) speaks for the chaddr, which must be the Ethernet
// source of the frame it came in (RFC 2131 §2: chaddr is the client's
// hardware address). Otherwise one device could RELEASE or DECLINE
// another's lease, or take leases in its name. A relayed message's chaddr
// is vouched for by the relay (RFC 2131 §4.1), whose own frame names the
// relay. A message without a frame cannot be checked.
func checkSource(req *dhcpv4.DHCPv4, in inbound) string {
	if addr4(req.GatewayIPAddr).IsValid() {
		return ""
	}
	if !in.l2 {
		return dropUnverified
	}
	if !bytes.Equal(req.ClientHWAddr, in.src) {
		return dropSourceMismatch
	}
	return ""
}
