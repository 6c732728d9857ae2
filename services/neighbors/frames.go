package neighbors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/packetsock"
)

// Reasons a control-plane frame gives no sighting; the keys of
// Stats.Ignored.
const (
	// ReasonLLAddrMismatch: an ND link-layer option or ARP's sender
	// hardware address names another MAC than the frame's Ethernet
	// source. The message says something about another host, which only
	// that host's own frames may: ignored whole.
	ReasonLLAddrMismatch = "lladdr_mismatch"
	// ReasonMalformed: too short, a bad header or checksum, an ND
	// message that fails RFC 4861 §6.1.1/§7.1 (hop limit, code, options).
	ReasonMalformed = "malformed"
	// ReasonNoAddress: well-formed, but from no address of the sender's
	// (DAD's unspecified source, an ARP probe's 0.0.0.0).
	ReasonNoAddress = "no_address"
	// ReasonSource: a multicast or zero Ethernet source, or a source
	// address no host uses (multicast, loopback).
	ReasonSource = "source"
)

const (
	ethHeaderLen  = 14
	ipv6HeaderLen = 40
	arpLen        = 28
	protoICMPv6   = 58

	icmpRS = 133
	icmpNS = 135
	icmpNA = 136

	// snapLen holds an ND message with its options in a 1500-octet frame.
	snapLen = 1514

	// Packet types (linux/if_packet.h) the filters let through: frames
	// to the gizmo, broadcast and multicast. Not the gizmo's own
	// (PACKET_OUTGOING), its looped-back multicast (PACKET_LOOPBACK) or
	// frames for other hosts a promiscuous port hears (PACKET_OTHERHOST).
	packetMulticast = 2
)

// frameSighting is what one frame says: the Ethernet source uses addr,
// and target too when valid (an NA's target).
type frameSighting struct {
	mac    net.HardwareAddr
	addr   netip.Addr
	target netip.Addr
}

// parseFrame reads an Ethernet II frame carrying an IPv6 ND message (RS,
// NS, NA) or an ARP packet and returns the (Ethernet source, IP source)
// pair it shows, or the reason it shows none. Only what the sender says
// of itself counts: the address it sent from, with the MAC it sent with,
// and an NA's target, which it answers for at that MAC (RFC 4861 §4.4; a
// host that proxies an address of its own, as a CLAT does, answers with
// another source). A link-layer option or ARP sender address that
// disagrees with the Ethernet source says something about another host,
// which only that host's own frames may: the whole frame is suspect.
func parseFrame(b []byte) (frameSighting, string) {
	if len(b) < ethHeaderLen {
		return frameSighting{}, ReasonMalformed
	}
	src := net.HardwareAddr(b[6:12])
	if src[0]&1 == 1 || bytes.Equal(src, make([]byte, 6)) {
		return frameSighting{}, ReasonSource
	}
	switch binary.BigEndian.Uint16(b[12:14]) {
	case unix.ETH_P_ARP:
		return parseARP(src, b[ethHeaderLen:])
	case unix.ETH_P_IPV6:
		return parseND(src, b[ethHeaderLen:])
	}
	return frameSighting{}, ReasonMalformed
}

// parseARP is RFC 826 for Ethernet and IPv4.
func parseARP(src net.HardwareAddr, b []byte) (frameSighting, string) {
	if len(b) < arpLen || binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != unix.ETH_P_IP ||
		b[4] != 6 || b[5] != 4 {
		return frameSighting{}, ReasonMalformed
	}
	if op := binary.BigEndian.Uint16(b[6:8]); op != 1 && op != 2 {
		return frameSighting{}, ReasonMalformed
	}
	if !bytes.Equal(b[8:14], src) {
		return frameSighting{}, ReasonLLAddrMismatch
	}
	ip := netip.AddrFrom4([4]byte(b[14:18]))
	switch {
	case ip.IsUnspecified():
		return frameSighting{}, ReasonNoAddress // RFC 5227 §2.1.1 probe
	case ip.IsMulticast() || ip.IsLoopback() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return frameSighting{}, ReasonSource
	}
	return frameSighting{mac: clone(src), addr: ip}, ""
}

// parseND checks an IPv6 packet for an RS, NS or NA as RFC 4861 §6.1.1
// and §7.1.1/§7.1.2 ask (hop limit 255, code 0, the checksum, options of
// non-zero length), and that its link-layer option, if any, is src.
func parseND(src net.HardwareAddr, b []byte) (frameSighting, string) {
	if len(b) < ipv6HeaderLen || b[0]>>4 != 6 || b[6] != protoICMPv6 {
		return frameSighting{}, ReasonMalformed
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen < 4 || ipv6HeaderLen+plen > len(b) || b[7] != 255 {
		return frameSighting{}, ReasonMalformed
	}
	from := netip.AddrFrom16([16]byte(b[8:24]))
	to := netip.AddrFrom16([16]byte(b[24:40]))
	icmp := b[ipv6HeaderLen : ipv6HeaderLen+plen]
	if icmp[1] != 0 || ethframe.ICMPv6Checksum(from, to, icmp) != 0 {
		return frameSighting{}, ReasonMalformed
	}
	m, err := ndp.ParseMessage(icmp)
	if err != nil {
		return frameSighting{}, ReasonMalformed
	}
	var (
		opts   []ndp.Option
		want   ndp.Direction
		target netip.Addr
	)
	switch m := m.(type) {
	case *ndp.RouterSolicitation:
		opts, want = m.Options, ndp.Source
	case *ndp.NeighborSolicitation:
		opts, want = m.Options, ndp.Source
	case *ndp.NeighborAdvertisement:
		opts, want = m.Options, ndp.Target
		if t := m.TargetAddress; !t.IsMulticast() && !t.IsUnspecified() && !t.IsLoopback() && t != from {
			target = t
		}
	default:
		return frameSighting{}, ReasonMalformed
	}
	for _, o := range opts {
		if ll, ok := o.(*ndp.LinkLayerAddress); ok && ll.Direction == want && !bytes.Equal(ll.Addr, src) {
			return frameSighting{}, ReasonLLAddrMismatch
		}
	}
	switch {
	case from.IsUnspecified():
		return frameSighting{}, ReasonNoAddress // RFC 4862 §5.4.2 DAD
	case from.IsMulticast() || from.IsLoopback() || from.Is4In6():
		return frameSighting{}, ReasonSource
	}
	return frameSighting{mac: clone(src), addr: from, target: target}, ""
}

func clone(mac net.HardwareAddr) net.HardwareAddr { return append(net.HardwareAddr(nil), mac...) }

// ndFilter passes incoming RS, NS and NA without extension headers to an
// ETH_P_IPV6 socket; arpFilter every incoming ARP packet to an ETH_P_ARP
// one. Everything else, the LAN's bulk traffic above all, stays in the
// kernel.
var (
	ndFilter = []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},                                      // 0: A = pkttype
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: packetMulticast, SkipTrue: 6}, // 1: not to us → 8
		bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 1},                         // 2: next header
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: 4},        // 3: not ICMPv6 → 8
		bpf.LoadAbsolute{Off: ethHeaderLen + ipv6HeaderLen, Size: 1},             // 4: ICMPv6 type
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpRS, SkipTrue: 3},                // 5: RS → 9
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpNS, SkipTrue: 2},                // 6: NS → 9
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpNA, SkipTrue: 1},                // 7: NA → 9
		bpf.RetConstant{Val: 0},                                                  // 8: drop
		bpf.RetConstant{Val: snapLen},                                            // 9: pass
	}
	arpFilter = []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},                                      // 0: A = pkttype
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: packetMulticast, SkipTrue: 1}, // 1: not to us → 3
		bpf.RetConstant{Val: snapLen},                                            // 2: pass
		bpf.RetConstant{Val: 0},                                                  // 3: drop
	}
)

// listenFrames opens a raw packet socket for protocol on ifi with filter:
// frames with their Ethernet header, where the source address is.
func listenFrames(ifi *net.Interface, protocol int, filter []bpf.Instruction) (*packet.Conn, error) {
	c, err := packetsock.Listen(ifi, packet.Raw, protocol, filter)
	if err != nil {
		return nil, fmt.Errorf("neighbors: %w", err)
	}
	// A queue for a few thousand frames: a switch coming back with every
	// host soliciting at once; what does not fit is counted
	// (Stats.SocketDrops).
	packetsock.ForceReadBuffer(c, readBuffer)
	return c, nil
}

// readBuffer is the frame sockets' receive buffer.
const readBuffer = 2 << 20
