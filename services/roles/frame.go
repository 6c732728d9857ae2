package roles

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Upstream is an upstream signal found in one Ethernet frame heard on a
// LAN-side port.
type Upstream struct {
	Signal Signal
	// SrcMAC is the frame's sender: the gizmo ignores its own.
	SrcMAC net.HardwareAddr
	// From is the IP source address.
	From netip.Addr
	// ServerID is a DHCPv4 server's identifier (option 54), if present.
	ServerID netip.Addr
}

// errNotUpstream: the frame is well-formed enough but no upstream signal.
var errNotUpstream = errors.New("roles: not an upstream signal")

const (
	etherHeaderLen = 14
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	ipv6HeaderLen  = 40
	protoUDP       = 17
	protoICMPv6    = 58
)

// ParseFrame finds an upstream signal in an Ethernet frame: a Router
// Advertisement, a DHCPv4 OFFER or ACK, or a DHCPv6 Advertise or Reply.
// Anything else, or a malformed frame, is an error; it never panics.
func ParseFrame(b []byte) (Upstream, error) {
	if len(b) < etherHeaderLen {
		return Upstream{}, fmt.Errorf("roles: frame of %d bytes is shorter than an Ethernet header", len(b))
	}
	u := Upstream{SrcMAC: net.HardwareAddr(append([]byte(nil), b[6:12]...))}
	payload := b[etherHeaderLen:]
	switch binary.BigEndian.Uint16(b[12:14]) {
	case etherTypeIPv6:
		return parseIPv6(u, payload)
	case etherTypeIPv4:
		return parseIPv4(u, payload)
	}
	return Upstream{}, errNotUpstream
}

func parseIPv6(u Upstream, b []byte) (Upstream, error) {
	if len(b) < ipv6HeaderLen || b[0]>>4 != 6 {
		return Upstream{}, errors.New("roles: truncated or not an IPv6 header")
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if ipv6HeaderLen+plen > len(b) {
		return Upstream{}, fmt.Errorf("roles: IPv6 payload length %d exceeds the frame", plen)
	}
	next, hopLimit := b[6], b[7]
	u.From = netip.AddrFrom16([16]byte(b[8:24]))
	body := b[ipv6HeaderLen : ipv6HeaderLen+plen]
	switch next {
	case protoICMPv6:
		// RFC 4861 §6.1.2: a valid RA has hop limit 255, a link-local
		// source and an ICMP length of at least 16 octets.
		if len(body) < 16 || body[0] != 134 || body[1] != 0 {
			return Upstream{}, errNotUpstream
		}
		if hopLimit != 255 || !u.From.IsLinkLocalUnicast() {
			return Upstream{}, errors.New("roles: RA with hop limit below 255 or a source that is not link-local (RFC 4861 §6.1.2)")
		}
		u.Signal = SignalRouterNoDefault
		if binary.BigEndian.Uint16(body[6:8]) > 0 {
			u.Signal = SignalRouter
		}
		return u, nil
	case protoUDP:
		// RFC 8415 §7.2: servers send from port 547 to clients on 546.
		if len(body) < 9 || binary.BigEndian.Uint16(body[0:2]) != 547 || binary.BigEndian.Uint16(body[2:4]) != 546 {
			return Upstream{}, errNotUpstream
		}
		switch body[8] { // msg-type, RFC 8415 §7.3
		case 2, 7: // ADVERTISE, REPLY
			u.Signal = SignalDHCPv6Server
			return u, nil
		}
	}
	return Upstream{}, errNotUpstream
}

func parseIPv4(u Upstream, b []byte) (Upstream, error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return Upstream{}, errors.New("roles: truncated or not an IPv4 header")
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || total > len(b) {
		return Upstream{}, fmt.Errorf("roles: IPv4 header length %d or total length %d do not fit the frame", ihl, total)
	}
	if b[9] != protoUDP || binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
		return Upstream{}, errNotUpstream // not UDP, or a fragment
	}
	u.From = netip.AddrFrom4([4]byte(b[12:16]))
	udp := b[ihl:total]
	// RFC 2131 §4.1: servers send from port 67 to clients on 68.
	if len(udp) < 8 || binary.BigEndian.Uint16(udp[0:2]) != 67 || binary.BigEndian.Uint16(udp[2:4]) != 68 {
		return Upstream{}, errNotUpstream
	}
	msg := udp[8:]
	// RFC 2131 §2: op, htype, hlen, hops, xid, secs, flags, ciaddr,
	// yiaddr, siaddr, giaddr, chaddr (16), sname (64), file (128), then
	// the magic cookie and the options (236 + 4 octets before them).
	if len(msg) < 240 || msg[0] != 2 || binary.BigEndian.Uint32(msg[236:240]) != 0x63825363 {
		return Upstream{}, errNotUpstream
	}
	var msgType byte
	for opts := msg[240:]; len(opts) > 0; {
		code := opts[0]
		if code == 255 { // end
			break
		}
		if code == 0 { // pad
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			return Upstream{}, errors.New("roles: DHCPv4 option runs past the message")
		}
		val := opts[2 : 2+int(opts[1])]
		switch {
		case code == 53 && len(val) == 1:
			msgType = val[0]
		case code == 54 && len(val) == 4:
			u.ServerID = netip.AddrFrom4([4]byte(val))
		}
		opts = opts[2+len(val):]
	}
	switch msgType {
	case 2, 5: // DHCPOFFER, DHCPACK (RFC 2132 §9.6)
		u.Signal = SignalDHCPv4Server
		return u, nil
	}
	return Upstream{}, errNotUpstream
}
