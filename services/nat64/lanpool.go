package nat64

import (
	"fmt"
	"net/netip"
)

// LANLegacy is the LAN pool: the gizmo's own IPv4 address on the LAN, from
// which the LAN's IPv6-only hosts reach its IPv4-only devices (a printer,
// an IoT gadget). A packet from the LAN to a device's address under Prefix
// is translated with the gizmo's LAN address and a port of the LAN pool as
// its source and sent back out of the LAN; the device answers the gizmo,
// as a NAT44 would show it the other way round. Bindings, sessions and the
// quotas work as for the WAN pool (RFC 6146), each pool with its own
// bindings.
type LANLegacy struct {
	// Addr4 is the gizmo's IPv4 address on the LAN with the network's
	// length (203.0.113.129/25): the pool's address, and the network of
	// the devices it reaches. Invalid: no LAN pool. At most a /30, so that
	// the network has hosts besides its own and broadcast addresses, which
	// are never translated to (nor is the gizmo's address).
	Addr4 netip.Prefix
	// Prefix is where the devices' addresses are embedded for the hosts
	// (RFC 6052 §2.2): the plan's Pref64, or a /96 of its own, which the
	// translator then matches besides the Pref64. Without the WAN pool any
	// RFC 6052 prefix.
	Prefix netip.Prefix
	// Refused are devices the owner keeps from IPv6-only hosts: never
	// translated to, each attempt counted (lan_legacy_refused). At most
	// MaxLANRefused.
	Refused []netip.Addr
	// Ports are the LAN pool's ports, for every source port; zero:
	// DefaultLANPorts. They must not overlap the WAN pool's.
	Ports PortRange
}

// Enabled reports whether the plan has a LAN pool.
func (l LANLegacy) Enabled() bool { return l.Addr4.IsValid() }

// DefaultLANPorts lie above Linux's ephemeral ports (32768-60999), where
// nothing of the gizmo's listens or connects from on its LAN address: its
// services hold well-known ports (DNS, DHCP, NTP, the dashboard), and the
// kernel picks the ephemeral ones for its own connections.
var DefaultLANPorts = PortRange{Min: 61000, Max: 65535}

// MaxLANRefused bounds LANLegacy.Refused: the size of the datapath's table
// (LAN_REFUSED_MAX in bpf/policy.h).
const MaxLANRefused = 4096

// setLANPool puts the plan's LAN pool into the configuration, whose WAN
// part (prefix, ports) is set already.
func (p Plan) setLANPool(c *nat64Config) error {
	l := p.LANLegacy
	if !l.Enabled() {
		return nil
	}
	a := l.Addr4.Addr()
	if !a.Is4() || l.Addr4.Bits() < 8 || l.Addr4.Bits() > 30 {
		return fmt.Errorf("nat64: LAN pool %s: an IPv4 address in a network of /8 to /30", l.Addr4)
	}
	if a == l.Addr4.Masked().Addr() {
		return fmt.Errorf("nat64: LAN pool %s is the network's own address", l.Addr4)
	}
	if a == p.Pool4 {
		return fmt.Errorf("nat64: LAN pool %s is the WAN pool's address", a)
	}
	if p.Pool4.IsValid() && l.Prefix.Masked() != p.Pref64.Masked() {
		// A prefix of its own, matched besides the PREF64.
		pref := l.Prefix.Masked()
		if pref.Bits() != 96 || !pref.Addr().Is6() || pref.Addr().Is4In6() {
			return fmt.Errorf("nat64: LAN pool prefix %s: the PREF64 %s or an IPv6 /96", l.Prefix, p.Pref64)
		}
		b := pref.Addr().As16()
		if b[8] != 0 {
			return fmt.Errorf("nat64: LAN pool prefix %s: bits 64-71 must be zero (RFC 6052 §2.2)", l.Prefix)
		}
		if pref.Overlaps(p.Pref64.Masked()) {
			return fmt.Errorf("nat64: LAN pool prefix %s overlaps the PREF64 %s", l.Prefix, p.Pref64)
		}
		c.LanPref96 = b
		c.Flags |= flagLAN96
	}
	ports := l.Ports
	if ports == (PortRange{}) {
		ports = DefaultLANPorts
	}
	if ports.Min == 0 || ports.Max < ports.Min {
		return fmt.Errorf("nat64: LAN pool ports %d-%d are empty", ports.Min, ports.Max)
	}
	if p.Pool4.IsValid() {
		// A pool port names its binding's pool in the per-binding quota
		// (bpf/nat64.h, QBIND_SLOTS).
		for _, w := range []PortRange{{c.PortLoMin, c.PortLoMax}, {c.PortHiMin, c.PortHiMax}} {
			if w != (PortRange{}) && ports.Min <= w.Max && w.Min <= ports.Max {
				return fmt.Errorf("nat64: LAN pool ports %d-%d overlap the WAN pool's %d-%d", ports.Min, ports.Max, w.Min, w.Max)
			}
		}
	}
	if len(l.Refused) > MaxLANRefused {
		return fmt.Errorf("nat64: %d refused LAN devices, more than %d", len(l.Refused), MaxLANRefused)
	}
	for _, r := range l.Refused {
		if !r.Is4() {
			return fmt.Errorf("nat64: refused LAN device %s is not IPv4", r)
		}
	}
	mask := netip.PrefixFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), l.Addr4.Bits()).Masked().Addr()
	c.LanPool4 = be32(a)
	c.LanNet4 = be32(l.Addr4.Masked().Addr())
	c.LanMask4 = be32(mask)
	c.LanPortMin, c.LanPortMax = ports.Min, ports.Max
	return nil
}

// lanIdentity is what the LAN pool's bindings depend on: a change of any
// of it makes them meaningless.
type lanIdentity struct {
	pool, net, mask  uint32
	portMin, portMax uint16
	flags            uint8
	pref96, pref64   [16]uint8
}

func lanIdentityOf(c nat64Config) lanIdentity {
	id := lanIdentity{pool: c.LanPool4, net: c.LanNet4, mask: c.LanMask4, portMin: c.LanPortMin, portMax: c.LanPortMax,
		flags: c.Flags & flagLAN96}
	// The devices' IPv6 addresses: under their own /96, or the PREF64.
	if c.Flags&flagLAN96 != 0 {
		id.pref96 = c.LanPref96
	} else {
		id.pref64 = c.Pref64
	}
	return id
}

// refusedSet is a plan's refused LAN devices as the datapath keys them.
func refusedSet(l LANLegacy) map[uint32]bool {
	out := make(map[uint32]bool, len(l.Refused))
	for _, a := range l.Refused {
		if a.Is4() {
			out[be32(a)] = true
		}
	}
	return out
}
