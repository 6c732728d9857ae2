package nat64

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Plan is what the NAT64 should do, computed by the daemon from its state
// (gizmo/plan.NAT64). The zero Plan turns translation off.
type Plan struct {
	// Pool4 is the WAN's IPv4 address, the WAN pool's only address
	// (RFC 6146 §3.5.1: the pool may be a single address). Invalid: no
	// translation to the internet.
	Pool4 netip.Addr
	// Pref64 is the NAT64 prefix: /32, /40, /48, /56, /64 or /96 (RFC 6052
	// §2.2).
	Pref64 netip.Prefix
	// LANPrefixes are the IPv6 sources allowed to use the NAT64; packets
	// from anywhere else are dropped and counted (spoofing).
	LANPrefixes []netip.Prefix
	// Deny4 are IPv4 destinations never translated to. With the well-known
	// prefix this holds the non-global ranges (RFC 6052 §3.1), and always
	// the gizmo's own networks.
	Deny4 []netip.Prefix
	// Router6 is the source address of the ICMPv6 errors the translator
	// itself sends (hop limit exceeded, packet too big): the gizmo's
	// address on the LAN.
	Router6 netip.Addr

	LANIfindex, WANIfindex int
	LANMTU, WANMTU         int

	// PortsLow and PortsHigh are the pool ports for source ports below and
	// from 1024 (RFC 6146 §3.5.1.1 keeps the range). They must not overlap
	// the ports the kernel uses on the WAN address: its ephemeral range
	// and the firewall's NAT44 masquerade range.
	PortsLow, PortsHigh PortRange
	// MaxSessionsPerMAC bounds the sessions one LAN host opens, counted
	// by the Ethernet source of its packets: every address it uses, in
	// every prefix, so that a host rotating its addresses (RFC 8981)
	// meets its own limit and not its neighbours' (the hosts of a home
	// share one /64). 0: an eighth of the session table
	// (DefaultMaxSessionsPerMAC).
	MaxSessionsPerMAC int
	// MaxSessionsPerHost is one LAN address's share of its host's
	// sessions; 0: half of MaxSessionsPerMAC (DefaultMaxSessionsPerHost).
	MaxSessionsPerHost int
	// MaxSessionsPer64 bounds the sessions the addresses of one /64 open
	// together, so that the LAN's /64 cannot take the whole table from
	// the ULA and the other prefixes; 0: three quarters of the session
	// table (DefaultMaxSessionsPer64).
	MaxSessionsPer64 int
	// MaxInboundSessionsPerBinding bounds the sessions that packets from
	// the IPv4 side open on one binding (address-dependent filtering lets
	// a remote in from any of its ports); 0:
	// DefaultMaxInboundSessionsPerBinding.
	MaxInboundSessionsPerBinding int
	// ICMPErrorsPerSecond is the rate of the ICMP errors the translator
	// itself sends, in each direction (RFC 4443 §2.4(f)); 0:
	// DefaultICMPErrorsPerSecond.
	ICMPErrorsPerSecond int

	// LANLegacy is the LAN pool, through which the LAN's IPv6-only hosts
	// reach its own IPv4-only devices; zero: none. It works with or
	// without the WAN pool.
	LANLegacy LANLegacy
}

// PortRange is an inclusive range of ports.
type PortRange struct{ Min, Max uint16 }

// DefaultPortsLow and DefaultPortsHigh leave 32768-65535 to the kernel:
// Linux's ephemeral ports (32768-60999) and the NAT44 masquerade range
// above them.
var (
	DefaultPortsLow  = PortRange{Min: 1, Max: 1023}
	DefaultPortsHigh = PortRange{Min: 1024, Max: 32767}
)

// Enabled reports whether the plan translates at all: to the internet, to
// the LAN's own devices, or both.
func (p Plan) Enabled() bool { return p.Pool4.IsValid() || p.LANLegacy.Enabled() }

// config flags, mirrored from bpf/nat64.h.
const (
	flagDenyCheck = 1
	flagNoFIB     = 2
	flagFakeClock = 4
	flagLAN64     = 8
	flagLAN96     = 16
)

// toConfig turns a plan into the BPF configuration value for a session
// table of table entries.
func (p Plan) toConfig(table uint32) (nat64Config, error) {
	var c nat64Config
	if !p.Enabled() {
		return c, nil
	}
	wan := p.Pool4.IsValid()
	if wan && !p.Pool4.Is4() {
		return c, fmt.Errorf("nat64: pool %s is not IPv4", p.Pool4)
	}
	// Without the WAN pool, the LAN pool's prefix is the only one.
	pref := p.Pref64.Masked()
	if !wan {
		pref = p.LANLegacy.Prefix.Masked()
	}
	switch pref.Bits() {
	case 32, 40, 48, 56, 64, 96:
	default:
		return c, fmt.Errorf("nat64: prefix %s: length must be 32, 40, 48, 56, 64 or 96 (RFC 6052 §2.2)", p.Pref64)
	}
	if !pref.Addr().Is6() || pref.Addr().Is4In6() {
		return c, fmt.Errorf("nat64: prefix %s is not IPv6", p.Pref64)
	}
	a := pref.Addr().As16()
	// RFC 6052 §2.2: bits 64-71 (the u octet) must be zero.
	if pref.Bits() > 64 && a[8] != 0 {
		return c, fmt.Errorf("nat64: prefix %s: bits 64-71 must be zero (RFC 6052 §2.2)", p.Pref64)
	}
	c.Pref64 = a
	for i := range 16 {
		switch {
		case i < pref.Bits()/8:
			c.Pref64Mask[i] = 0xff
		case i == 8:
			// The u octet is checked to be zero for shorter prefixes.
			c.Pref64Mask[i] = 0xff
		}
	}
	c.Pref64Len = uint8(pref.Bits())
	if wan {
		c.Pool4 = be32(p.Pool4)
	}
	if p.Router6.Is6() {
		c.Router6 = p.Router6.As16()
	}
	if p.LANIfindex <= 0 || p.WANIfindex < 0 || (wan && p.WANIfindex == 0) {
		return c, errors.New("nat64: LAN and WAN interface indexes are required")
	}
	c.LanIfindex = uint32(p.LANIfindex)
	c.WanIfindex = uint32(p.WANIfindex)
	c.LanMtu = mtuOr(p.LANMTU, 1500)
	c.WanMtu = mtuOr(p.WANMTU, 1500)
	lo, hi := p.PortsLow, p.PortsHigh
	if lo == (PortRange{}) && hi == (PortRange{}) {
		lo, hi = DefaultPortsLow, DefaultPortsHigh
	}
	if hi.Min == 0 || hi.Max < hi.Min {
		return c, fmt.Errorf("nat64: high port range %d-%d is empty", hi.Min, hi.Max)
	}
	if lo != (PortRange{}) && (lo.Min == 0 || lo.Max < lo.Min) {
		return c, fmt.Errorf("nat64: low port range %d-%d is invalid", lo.Min, lo.Max)
	}
	c.PortLoMin, c.PortLoMax = lo.Min, lo.Max
	c.PortHiMin, c.PortHiMax = hi.Min, hi.Max
	if err := p.setBounds(&c, table); err != nil {
		return c, err
	}
	if err := p.setLANPool(&c); err != nil {
		return c, err
	}
	if len(p.Deny4) > 0 {
		c.Flags |= flagDenyCheck
	}
	// A LAN of at most four /64s (the usual case) is matched by compare;
	// anything else by the LPM trie.
	if n := len(p.LANPrefixes); n > 0 && n <= len(c.Lan64) {
		all64 := true
		for i, lp := range p.LANPrefixes {
			if lp.Bits() != 64 || !lp.Addr().Is6() || lp.Addr().Is4In6() {
				all64 = false
				break
			}
			a := lp.Masked().Addr().As16()
			c.Lan64[i] = nativeEndian.Uint64(a[:8])
		}
		if all64 {
			c.Flags |= flagLAN64
			c.Lan64N = uint8(n)
		} else {
			c.Lan64 = [4]uint64{}
		}
	}
	return c, nil
}

// setBounds puts the plan's quotas and ICMP error rate, or their defaults
// for a session table of table entries, into the configuration.
func (p Plan) setBounds(c *nat64Config, table uint32) error {
	or := func(name string, v int, def uint32) (uint32, error) {
		switch {
		case v < 0 || v > 1<<30:
			return 0, fmt.Errorf("nat64: %s %d is out of range", name, v)
		case v == 0:
			return max(def, 1), nil
		}
		return uint32(v), nil
	}
	var err error
	if c.MaxSessionsPer64, err = or("MaxSessionsPer64", p.MaxSessionsPer64, table/4*3); err != nil {
		return err
	}
	if c.MaxSessionsPerMac, err = or("MaxSessionsPerMAC", p.MaxSessionsPerMAC, table/8); err != nil {
		return err
	}
	if c.MaxSessionsPerHost, err = or("MaxSessionsPerHost", p.MaxSessionsPerHost, c.MaxSessionsPerMac/2); err != nil {
		return err
	}
	if c.MaxSessionsPerHost > c.MaxSessionsPerMac {
		return fmt.Errorf("nat64: an address's share of %d sessions is more than its host's %d", c.MaxSessionsPerHost, c.MaxSessionsPerMac)
	}
	if c.MaxSessionsPerHost > c.MaxSessionsPer64 {
		return fmt.Errorf("nat64: an address's share of %d sessions is more than its /64's %d", c.MaxSessionsPerHost, c.MaxSessionsPer64)
	}
	if c.MaxInboundPerBinding, err = or("MaxInboundSessionsPerBinding", p.MaxInboundSessionsPerBinding, DefaultMaxInboundSessionsPerBinding); err != nil {
		return err
	}
	rate, err := or("ICMPErrorsPerSecond", p.ICMPErrorsPerSecond, DefaultICMPErrorsPerSecond)
	if err != nil {
		return err
	}
	// A burst of a fifth of a second's errors (at least one): the
	// program allows an error while the next one is due no later than
	// burst-1 intervals from now.
	c.IcmpIntervalNs = uint64(time.Second) / uint64(rate)
	burst := max(uint64(rate)/5, 1)
	c.IcmpBurstNs = (burst - 1) * c.IcmpIntervalNs
	return nil
}

func mtuOr(mtu, def int) uint16 {
	if mtu < 68 || mtu > 65535 {
		return uint16(def)
	}
	return uint16(mtu)
}

// be32 returns the address as the BPF program sees a __be32 loaded on
// this machine: the network-order bytes in native order.
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return nativeEndian.Uint32(b[:])
}

func addr4(v uint32) netip.Addr {
	var b [4]byte
	nativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// be16 and port16 convert ports between host order and the __be16 the
// program stores.
func be16(port uint16) uint16 {
	var b [2]byte
	b[0], b[1] = byte(port>>8), byte(port)
	return nativeEndian.Uint16(b[:])
}

func port16(v uint16) uint16 {
	var b [2]byte
	nativeEndian.PutUint16(b[:], v)
	return uint16(b[0])<<8 | uint16(b[1])
}
