package ndproxy

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/packetsock"
)

// ndKind is the kind of Neighbor Discovery message the snooper saw.
type ndKind int

const (
	kindDAD ndKind = iota // NS from :: (RFC 4862 §5.4.2): Target is tentative
	kindNS                // NS from a unicast source
	kindNA                // NA (RFC 4861 §4.4)
)

// ndEvent is one Neighbor Solicitation or Advertisement heard on a link.
type ndEvent struct {
	kind   ndKind
	source netip.Addr
	target netip.Addr
}

const (
	ipv6HeaderLen   = 40
	protoICMPv6     = 58
	typeNS          = 135
	typeNA          = 136
	packetOutgoing  = 4 // PACKET_OUTGOING (linux/if_packet.h)
	snapLen         = 1500
	ndHopLimit      = 255
	errNotND        = parseError("not an ICMPv6 NS or NA")
	errBadIPv6      = parseError("malformed IPv6 header")
	errBadHopLimit  = parseError("hop limit is not 255 (RFC 4861 §7.1.1)")
	errBadDADDest   = parseError("DAD NS not to the target's solicited-node group (RFC 4861 §7.1.1)")
	errDADWithLLAO  = parseError("DAD NS with a source link-layer option (RFC 4861 §7.1.1)")
	errNASourceNone = parseError("NA from the unspecified address")
)

type parseError string

func (e parseError) Error() string { return "ndproxy: " + string(e) }

// parseND decodes an IPv6 packet (from a SOCK_DGRAM packet socket: no
// link-layer header) that carries an NS or NA, and applies the receive
// checks of RFC 4861 §7.1 that matter here. Packets with extension
// headers are not ND as nodes send it and are refused.
func parseND(b []byte) (ndEvent, error) {
	if len(b) < ipv6HeaderLen || b[0]>>4 != 6 {
		return ndEvent{}, errBadIPv6
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if ipv6HeaderLen+plen > len(b) {
		return ndEvent{}, errBadIPv6
	}
	if b[6] != protoICMPv6 || plen < 1 || (b[ipv6HeaderLen] != typeNS && b[ipv6HeaderLen] != typeNA) {
		return ndEvent{}, errNotND
	}
	if b[7] != ndHopLimit {
		return ndEvent{}, errBadHopLimit
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	m, err := ndp.ParseMessage(b[ipv6HeaderLen : ipv6HeaderLen+plen])
	if err != nil {
		return ndEvent{}, fmt.Errorf("ndproxy: %w", err)
	}
	switch m := m.(type) {
	case *ndp.NeighborSolicitation:
		ev := ndEvent{kind: kindNS, source: src, target: m.TargetAddress}
		if src.IsUnspecified() {
			if dst != solicitedNode(m.TargetAddress) {
				return ndEvent{}, errBadDADDest
			}
			for _, o := range m.Options {
				if ll, ok := o.(*ndp.LinkLayerAddress); ok && ll.Direction == ndp.Source {
					return ndEvent{}, errDADWithLLAO
				}
			}
			ev.kind = kindDAD
		}
		return ev, nil
	case *ndp.NeighborAdvertisement:
		if src.IsUnspecified() {
			return ndEvent{}, errNASourceNone
		}
		return ndEvent{kind: kindNA, source: src, target: m.TargetAddress}, nil
	}
	return ndEvent{}, errNotND
}

// solicitedNode is a's solicited-node multicast address (RFC 4291 §2.7.1).
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	sn := [16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]}
	return netip.AddrFrom16(sn)
}

// ndFilter passes incoming ICMPv6 NS and NA without extension headers and
// drops everything else in the kernel, so that the snooper never sees the
// LAN's bulk traffic nor the gizmo's own ND messages.
var ndFilter = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},                               // 0: A = pkttype
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 5}, // 1: outgoing → 7
	bpf.LoadAbsolute{Off: 6, Size: 1},                                 // 2: next header
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 3}, // 3: not ICMPv6 → 7
	bpf.LoadAbsolute{Off: ipv6HeaderLen, Size: 1},                     // 4: ICMPv6 type
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: typeNS, SkipTrue: 2},         // 5: NS → 8
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: typeNA, SkipTrue: 1},         // 6: NA → 8
	bpf.RetConstant{Val: 0},                                           // 7: drop
	bpf.RetConstant{Val: snapLen},                                     // 8: pass
}

// ownNSFilter passes only the NS the gizmo itself sends (outgoing): on
// the uplink, one for an address in the shared /64 means the kernel
// routes something for a LAN host out of the WAN, because that host has
// no proxy route yet (a NAT64 reply to a host that never spoke ND). The
// kernel shows outgoing packets only to ETH_P_ALL sockets, so the filter
// checks the protocol itself.
var ownNSFilter = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},                                   // 0: A = pkttype
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: packetOutgoing, SkipTrue: 6},  // 1: not outgoing → 8
	bpf.LoadExtension{Num: bpf.ExtProto},                                  // 2: A = ethertype
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IPV6, SkipTrue: 4}, // 3: not IPv6 → 8
	bpf.LoadAbsolute{Off: 6, Size: 1},                                     // 4: next header
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 2},     // 5: not ICMPv6 → 8
	bpf.LoadAbsolute{Off: ipv6HeaderLen, Size: 1},                         // 6: ICMPv6 type
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: typeNS, SkipTrue: 1},             // 7: NS → 9
	bpf.RetConstant{Val: 0},                                               // 8: drop
	bpf.RetConstant{Val: snapLen},                                         // 9: pass
}

// listenND opens a packet socket on ifname that receives the incoming NS
// and NA. allMulti joins all multicast groups for the socket's lifetime
// (PACKET_MR_ALLMULTI): a DAD NS goes to the target's solicited-node
// group, which the gizmo has not joined. The kernel drops the membership
// when the socket closes, even after a crash.
//
// own opens the socket with ownNSFilter instead: the gizmo's own NS.
func listenND(ifname string, allMulti, own bool) (*packet.Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("ndproxy: %w", err)
	}
	filter, proto := ndFilter, unix.ETH_P_IPV6
	if own {
		filter, proto = ownNSFilter, unix.ETH_P_ALL
	}
	c, err := packetsock.Listen(ifi, packet.Datagram, proto, filter)
	if err != nil {
		return nil, fmt.Errorf("ndproxy: %w", err)
	}
	// Room for a burst of a few thousand ND messages (every host of a
	// switch that comes back doing DAD); what does not fit is counted
	// (Stats.Dropped).
	packetsock.ForceReadBuffer(c, 2<<20)
	if allMulti {
		if err := packetsock.AllMulticast(c, ifi); err != nil {
			return nil, fmt.Errorf("ndproxy: %w", err)
		}
	}
	return c, nil
}
