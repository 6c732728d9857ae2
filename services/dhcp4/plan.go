package dhcp4

import (
	"fmt"
	"net/netip"
	"time"
)

// RFC 8925 §3.4: a client never waits less than MIN_V6ONLY_WAIT (§3.2), and
// V6ONLY_WAIT defaults to 1800 s.
const (
	MinV6OnlyWait     = 300 * time.Second
	DefaultV6OnlyWait = 1800 * time.Second
	// DefaultLeaseTime is short enough that a policy change reaches a legacy
	// host within the hour, long enough that a sleeping laptop keeps its
	// address over lunch.
	DefaultLeaseTime = time.Hour
	// MaxPool bounds the pool (a /16) so that a full scan for a free
	// address stays cheap; no home network needs more legacy addresses.
	MaxPool = 1 << 16
	// minLeaseTime keeps T1 (half the lease) well above the client's
	// retransmission back-off.
	minLeaseTime = time.Minute
)

// Plan is what the server should hand out. The daemon computes it from its
// state (gizmo/plan.DHCP4) and passes it to Update; a zero Plan disables the
// server (every request is ignored).
type Plan struct {
	// Server is the gizmo's own address on the LAN with the prefix length of
	// the legacy network, e.g. 203.0.113.129/25. It is the server
	// identifier (option 54) and, together with the mask, defines the subnet.
	Server netip.Prefix
	// PoolStart..PoolEnd (inclusive) are the dynamically leased addresses.
	// The server's own address, the router and the subnet's network and
	// broadcast addresses are never leased even when inside the range.
	PoolStart, PoolEnd netip.Addr
	// Router is sent in option 3; usually Server.Addr().
	Router netip.Addr
	// DNS are sent in option 6.
	DNS []netip.Addr
	// NTP are sent in option 42 (RFC 2132 §8.3): the gizmo's own address
	// when it serves time to the LAN.
	NTP []netip.Addr
	// Domain is sent in option 15 (RFC 8375: home.arpa).
	Domain string
	// LeaseTime is the lease duration (option 51); 0 means DefaultLeaseTime.
	LeaseTime time.Duration
	// V6OnlyWait is the value of option 108 (RFC 8925); 0 means
	// DefaultV6OnlyWait and values below MinV6OnlyWait are raised to it.
	V6OnlyWait time.Duration
	// DefaultV6OnlyPreferred applies to every MAC not listed in Hosts.
	DefaultV6OnlyPreferred bool
	// Hosts are the per-MAC policies, keyed by net.HardwareAddr.String().
	Hosts map[string]HostPolicy
}

// HostPolicy is what the server does for one MAC address.
type HostPolicy struct {
	// V6OnlyPreferred: send option 108 when the host asks for it.
	V6OnlyPreferred bool
	// Reserved, if valid, is the address this host always gets (a static
	// reservation). It must be inside the subnet; it need not be in the pool.
	Reserved netip.Addr
}

// Enabled reports whether the plan describes a network to serve.
func (p Plan) Enabled() bool { return p.Server.IsValid() }

// Subnet is the legacy network the server serves.
func (p Plan) Subnet() netip.Prefix { return p.Server.Masked() }

// CapPool is the end of a pool from first to last cut so that the pool
// holds at most MaxPool addresses.
func CapPool(first, last netip.Addr) netip.Addr {
	if u32(last)-u32(first)+1 > MaxPool {
		return addrFrom(u32(first) + MaxPool - 1)
	}
	return last
}

// Broadcast is the broadcast address of an IPv4 subnet, its last, with
// every host bit set (RFC 919 §7): no host's address, and the one the
// server names in option 28 (RFC 2132 §5.3).
func Broadcast(subnet netip.Prefix) netip.Addr {
	return addrFrom(u32(subnet.Masked().Addr()) | (1<<(32-subnet.Bits()) - 1))
}

// Validate checks that the plan describes one IPv4 subnet that holds the pool
// and every reservation.
func (p Plan) Validate() error {
	if !p.Enabled() {
		return nil
	}
	if !p.Server.Addr().Is4() || p.Server.Bits() > 30 {
		return fmt.Errorf("dhcp4: server %s is not an IPv4 address in a /30 or larger subnet", p.Server)
	}
	sub := p.Subnet()
	if !sub.Contains(p.PoolStart) || !sub.Contains(p.PoolEnd) || p.PoolEnd.Less(p.PoolStart) {
		return fmt.Errorf("dhcp4: pool %s-%s is not an ascending range inside %s", p.PoolStart, p.PoolEnd, sub)
	}
	if n := u32(p.PoolEnd) - u32(p.PoolStart) + 1; n > MaxPool {
		return fmt.Errorf("dhcp4: pool %s-%s has %d addresses, more than %d", p.PoolStart, p.PoolEnd, n, MaxPool)
	}
	if p.Router.IsValid() && !p.Router.Is4() {
		return fmt.Errorf("dhcp4: router %s is not IPv4", p.Router)
	}
	for _, d := range p.DNS {
		if !d.Is4() {
			return fmt.Errorf("dhcp4: DNS server %s is not IPv4", d)
		}
	}
	for _, n := range p.NTP {
		if !n.Is4() {
			return fmt.Errorf("dhcp4: NTP server %s is not IPv4", n)
		}
	}
	for mac, h := range p.Hosts {
		if h.Reserved.IsValid() && !sub.Contains(h.Reserved) {
			return fmt.Errorf("dhcp4: reservation %s for %s is outside %s", h.Reserved, mac, sub)
		}
	}
	return nil
}

// normalized fills in the defaults.
func (p Plan) normalized() Plan {
	if p.LeaseTime == 0 {
		p.LeaseTime = DefaultLeaseTime
	}
	p.LeaseTime = max(p.LeaseTime, minLeaseTime)
	if p.V6OnlyWait == 0 {
		p.V6OnlyWait = DefaultV6OnlyWait
	}
	// RFC 8925 §3.2 makes clients raise anything below MIN_V6ONLY_WAIT to it
	// (dhcpcd does), so a lower value would only mislead readers of a packet
	// capture: send what the clients will actually wait.
	p.V6OnlyWait = max(p.V6OnlyWait, MinV6OnlyWait)
	return p
}

// v6OnlyPreferred is the policy for mac.
func (p *Plan) v6OnlyPreferred(mac string) bool {
	if h, ok := p.Hosts[mac]; ok {
		return h.V6OnlyPreferred
	}
	return p.DefaultV6OnlyPreferred
}
