package clat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// IPv4 is the CLAT's IPv4 address on clat0, to which the kernel's NAT44
// maps the legacy hosts: from RFC 7335's 192.0.0.0/29, the IPv4 Service
// Continuity Prefix. DS-Lite's B4 and AFTR take 192.0.0.2 and 192.0.0.1
// (RFC 6333 §5.7); this one stays clear of them.
var IPv4 = netip.MustParseAddr("192.0.0.4")

// Dummy4 is the source of ICMPv4 errors translated from ICMPv6 errors
// whose source has no IPv4 form, a router between the gizmo and the NAT64
// (RFC 6791 with RFC 7600's IPv4 dummy address). Mirrored from bpf/clat.c.
var Dummy4 = netip.MustParseAddr("192.0.0.8")

// Overhead is how much bigger a packet gets in translation at most: an
// IPv6 header is 20 bytes longer than an IPv4 one, and a fragment also
// needs an IPv6 fragment header (RFC 7915 §4.1). clat0's MTU is the
// uplink's minus this, so that the kernel fragments or answers
// Fragmentation Needed (RFC 7915 §4, RFC 6877 §5) before the program sees a
// packet that would not fit.
const Overhead = 28

// Plan is what the CLAT should do, computed by the daemon
// (gizmo/plan.CLAT). The zero Plan turns it off.
type Plan struct {
	// Pref64 is the ISP's NAT64 prefix (RFC 6052 lengths). Invalid: off.
	Pref64 netip.Prefix
	// Address is the CLAT's IPv6 address, the source of everything it
	// translates (RFC 6877 §6.3).
	Address netip.Addr
	// ClaimOnWAN: Address is in the WAN link's own /64 (shared with the
	// LAN, no delegation), so the gizmo holds it on the WAN interface to
	// answer the ISP router's neighbour solicitations for it. In a
	// delegation it needs no claim: the ISP routes the delegation to the
	// gizmo.
	ClaimOnWAN bool
	// WANIfindex and WANMTU are the uplink's index and MTU (0: 1500).
	WANIfindex, WANMTU int
	// Unreachable are IPv4 destinations never translated to: with the
	// well-known prefix the non-global ranges (RFC 6052 §3.1). They get
	// unreachable routes, so that a legacy host hears an ICMP error at
	// once; no flow to one can exist, so the firewall drops whatever comes
	// from one as unsolicited.
	Unreachable []netip.Prefix
}

// Enabled reports whether the plan translates at all.
func (p Plan) Enabled() bool { return p.Pref64.IsValid() }

// MTU is clat0's MTU for the plan.
func (p Plan) MTU() int { return mtuOr(p.WANMTU) - Overhead }

// flagNoFIB (services/nat64/bpf/nat64.h F_NO_FIB) makes clat_out redirect
// to the uplink without a FIB lookup: tests without a routing table.
const flagNoFIB = 2

var nativeEndian = binary.NativeEndian

// Validate checks a plan before it is applied; an invalid plan leaves the
// running one in place.
func (p Plan) Validate() error {
	if !p.Enabled() {
		return nil
	}
	pref := p.Pref64.Masked()
	switch pref.Bits() {
	case 32, 40, 48, 56, 64, 96:
	default:
		return fmt.Errorf("clat: prefix %s: length must be 32, 40, 48, 56, 64 or 96 (RFC 6052 §2.2)", p.Pref64)
	}
	if !pref.Addr().Is6() || pref.Addr().Is4In6() {
		return fmt.Errorf("clat: prefix %s is not IPv6", p.Pref64)
	}
	// RFC 6052 §2.2: bits 64-71 (the u octet) are zero; a shorter
	// prefix has them zero once masked.
	if a := pref.Addr().As16(); a[8] != 0 {
		return fmt.Errorf("clat: prefix %s: bits 64-71 must be zero (RFC 6052 §2.2)", p.Pref64)
	}
	a := p.Address
	if !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() || a.Zone() != "" {
		return fmt.Errorf("clat: address %s is not a global IPv6 address", a)
	}
	if pref.Contains(a) {
		return fmt.Errorf("clat: address %s is inside the NAT64 prefix %s", a, pref)
	}
	if p.WANIfindex <= 0 {
		return errors.New("clat: the WAN interface index is required")
	}
	if p.MTU() < 576 {
		return fmt.Errorf("clat: WAN MTU %d leaves %d for IPv4, below RFC 791's 576", mtuOr(p.WANMTU), p.MTU())
	}
	for _, d := range p.Unreachable {
		if !d.IsValid() || !d.Addr().Is4() {
			return fmt.Errorf("clat: unreachable %s is not an IPv4 prefix", d)
		}
	}
	return nil
}

// toConfig turns a valid, enabled plan into the program's configuration
// (the NAT64's struct config; bpf/clat.c says which field holds what).
func (p Plan) toConfig(clat0 int) clatConfig {
	var c clatConfig
	pref := p.Pref64.Masked()
	c.Pref64 = pref.Addr().As16()
	for i := range 16 {
		// The u octet (byte 8) must be zero for lengths below /96
		// (RFC 6052 §2.2): the mask covers it.
		if i < pref.Bits()/8 || i == 8 {
			c.Pref64Mask[i] = 0xff
		}
	}
	c.Pref64Len = uint8(pref.Bits())
	c.Router6 = p.Address.As16()
	c.Pool4 = be32(IPv4)
	c.LanIfindex = uint32(p.WANIfindex)
	c.WanIfindex = uint32(clat0)
	c.LanMtu = uint16(mtuOr(p.WANMTU))
	c.WanMtu = uint16(p.MTU())
	return c
}

func mtuOr(mtu int) int {
	if mtu < 1280 || mtu > 65535 {
		return 1500
	}
	return mtu
}

// be32 is the address as the program sees a __be32 loaded on this
// machine: the network-order bytes in native order.
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return nativeEndian.Uint32(b[:])
}
