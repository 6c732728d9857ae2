package nsresponder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"

	"codeberg.org/monostack/gizmo/internal/ethframe"
)

const (
	ipv6HeaderLen = 40
	protoICMPv6   = 58
	typeNS        = 135
	// icmpNSLen is an NS without options: type, code, checksum, reserved
	// and the target (RFC 4861 §4.3).
	icmpNSLen = 24
	// ndHopLimit is what every ND message carries, so that one from off
	// the link (hop limit decremented by a router) is recognised
	// (RFC 4861 §7.1.1).
	ndHopLimit = 255
	// targetOffset is where an NS's target address starts in the IPv6
	// packet: the IPv6 header, then 8 bytes of ICMPv6 header and reserved.
	targetOffset = ipv6HeaderLen + 8
)

// Reasons a solicitation is refused, the keys of Stats.Refused.
const (
	ReasonMalformed  = "malformed"   // not a parseable IPv6 ICMPv6 NS
	ReasonHopLimit   = "hop_limit"   // RFC 4861 §7.1.1: hop limit is not 255
	ReasonChecksum   = "checksum"    // RFC 4861 §7.1.1: ICMPv6 checksum wrong
	ReasonInvalid    = "invalid"     // the other RFC 4861 §7.1.1 checks
	ReasonNotTarget  = "not_target"  // target outside the answered prefixes
	ReasonRateSource = "rate_source" // the source's share of answers is used up
	ReasonRateAll    = "rate_all"    // the answers of all sources are used up
	ReasonSources    = "sources"     // no room to track another source
)

// solicitation is an NS that passed the receive checks of RFC 4861 §7.1.1.
type solicitation struct {
	source, dest, target netip.Addr
	// sourceLL is the Source Link-Layer Address option, nil without one.
	sourceLL net.HardwareAddr
}

// refusal is a solicitation dropped for a reason (one of the Reason*
// constants).
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return "nsresponder: " + r.reason + ": " + r.err.Error() }

func refuse(reason, format string, args ...any) error {
	return &refusal{reason: reason, err: fmt.Errorf(format, args...)}
}

// reasonOf is the Reason* constant of an error from parseNS.
func reasonOf(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return r.reason
	}
	return ReasonMalformed
}

// parseNS decodes an IPv6 packet (from a SOCK_DGRAM packet socket: no
// link-layer header) that should carry a Neighbor Solicitation, and applies
// the receive checks of RFC 4861 §7.1.1. A packet socket sees the packet
// before the kernel's ICMPv6 code, so the checksum is checked here.
// Packets with extension headers are refused: nodes send ND without them.
func parseNS(b []byte) (solicitation, error) {
	if len(b) < ipv6HeaderLen || b[0]>>4 != 6 {
		return solicitation{}, refuse(ReasonMalformed, "not an IPv6 packet")
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if ipv6HeaderLen+plen > len(b) {
		return solicitation{}, refuse(ReasonMalformed, "payload length %d beyond the %d bytes received", plen, len(b)-ipv6HeaderLen)
	}
	// A link may pad short frames: the payload length says where the
	// packet ends.
	b = b[:ipv6HeaderLen+plen]
	if b[6] != protoICMPv6 || plen < icmpNSLen || b[ipv6HeaderLen] != typeNS {
		return solicitation{}, refuse(ReasonMalformed, "not an ICMPv6 Neighbor Solicitation of at least %d bytes", icmpNSLen)
	}
	if b[7] != ndHopLimit {
		return solicitation{}, refuse(ReasonHopLimit, "hop limit %d", b[7])
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	icmp := b[ipv6HeaderLen:]
	if checksum(src, dst, icmp) != 0 {
		return solicitation{}, refuse(ReasonChecksum, "ICMPv6 checksum does not verify")
	}
	if icmp[1] != 0 {
		return solicitation{}, refuse(ReasonInvalid, "ICMPv6 code %d", icmp[1])
	}
	m, err := ndp.ParseMessage(icmp)
	if err != nil {
		// ndp checks that every option has a length above 0.
		return solicitation{}, refuse(ReasonInvalid, "%w", err)
	}
	ns, ok := m.(*ndp.NeighborSolicitation)
	if !ok {
		return solicitation{}, refuse(ReasonMalformed, "not a Neighbor Solicitation")
	}
	s := solicitation{source: src, dest: dst, target: ns.TargetAddress}
	if s.target.IsMulticast() {
		return solicitation{}, refuse(ReasonInvalid, "multicast target %s", s.target)
	}
	if src.IsMulticast() {
		// RFC 4291 §2.7: a multicast address is never a source.
		return solicitation{}, refuse(ReasonInvalid, "multicast source %s", src)
	}
	for _, o := range ns.Options {
		if ll, ok := o.(*ndp.LinkLayerAddress); ok && ll.Direction == ndp.Source {
			if len(ll.Addr) != 6 {
				return solicitation{}, refuse(ReasonInvalid, "source link-layer address of %d bytes on Ethernet", len(ll.Addr))
			}
			s.sourceLL = ll.Addr
		}
	}
	if src.IsUnspecified() {
		// A DAD probe (RFC 4862 §5.4.2).
		if dst != solicitedNode(s.target) {
			return solicitation{}, refuse(ReasonInvalid, "unspecified source to %s, not the target's solicited-node group", dst)
		}
		if s.sourceLL != nil {
			return solicitation{}, refuse(ReasonInvalid, "unspecified source with a source link-layer address")
		}
	}
	return s, nil
}

// solicitedNode is a's solicited-node multicast address (RFC 4291 §2.7.1).
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// allNodes is where an answer to a DAD probe goes (RFC 4861 §7.2.4), and
// its Ethernet group (RFC 2464 §7).
var (
	allNodes    = netip.MustParseAddr("ff02::1")
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// advertisement is the Neighbor Advertisement that answers s for a target
// the gizmo owns (RFC 4861 §7.2.4), with the gizmo's link-layer address
// mac as the target's. It returns the IPv6 packet and the link-layer
// address to send it to.
//
// Its source is the target itself, an address the gizmo holds as far as
// the link can tell, as a node answering for its own address sends it
// (and tools such as ndisc6 expect). The flags: R when the gizmo is a
// router (§4.4); S unless the NS was a DAD probe, whose answer goes to all
// nodes; O always, because the gizmo owns the prefix and is no proxy that
// must let an owner's answer win (§7.2.8 is for proxies).
func advertisement(s solicitation, frameSource net.HardwareAddr, mac net.HardwareAddr, router bool) ([]byte, net.HardwareAddr, error) {
	na := &ndp.NeighborAdvertisement{
		Router: router, Solicited: true, Override: true, TargetAddress: s.target,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	dst, dstMAC := s.source, s.sourceLL
	if s.source.IsUnspecified() {
		na.Solicited = false
		dst, dstMAC = allNodes, allNodesMAC
	} else if dstMAC == nil {
		// RFC 4861 §7.2.4 would resolve the source's address first; the
		// frame it came in already names its link-layer address, and a
		// unicast NS without the option is a NUD probe from a neighbour
		// that knows the gizmo.
		dstMAC = frameSource
	}
	if len(dstMAC) != 6 {
		return nil, nil, fmt.Errorf("nsresponder: no link-layer address to answer %s", s.source)
	}
	icmp, err := ndp.MarshalMessage(na)
	if err != nil {
		return nil, nil, fmt.Errorf("nsresponder: %w", err)
	}
	b := make([]byte, ipv6HeaderLen+len(icmp))
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:6], uint16(len(icmp)))
	b[6], b[7] = protoICMPv6, ndHopLimit
	src := s.target
	s16, d16 := src.As16(), dst.As16()
	copy(b[8:24], s16[:])
	copy(b[24:40], d16[:])
	copy(b[ipv6HeaderLen:], icmp)
	binary.BigEndian.PutUint16(b[ipv6HeaderLen+2:], checksum(src, dst, b[ipv6HeaderLen:]))
	return b, dstMAC, nil
}

// checksum is the ICMPv6 checksum of msg between src and dst (RFC 4443
// §2.3): 0 over a message that carries the right one.
func checksum(src, dst netip.Addr, msg []byte) uint16 { return ethframe.ICMPv6Checksum(src, dst, msg) }
