package ra

import (
	"net/netip"
)

// Reasons a Router Solicitation is dropped (RFC 4861 §6.1.1). They are the
// keys of Stats.RSInvalid.
const (
	ReasonHopLimit     = "hop_limit"     // IP Hop Limit is not 255: it was forwarded
	ReasonNoHopLimit   = "no_hop_limit"  // the kernel gave no hop limit to check
	ReasonType         = "type"          // not ICMPv6 type 133
	ReasonCode         = "code"          // ICMP Code is not 0
	ReasonLength       = "length"        // ICMP length under 8 octets
	ReasonOptionLength = "option_length" // an option of length 0 or running past the end
	ReasonSLLAOFromAny = "sllao_from_unspecified"
	ReasonSource       = "source" // not a unicast or unspecified IPv6 source
)

const (
	icmpTypeRouterSolicitation = 133
	optSourceLinkLayerAddress  = 1
	rsHeaderLen                = 8 // type, code, checksum, reserved
)

// Solicitation is a valid Router Solicitation. It carries no link-layer
// address: the service's ICMPv6 socket never sees the Ethernet header, so
// an SLLAO cannot be checked against the frame's source here, and an
// unchecked one must not tell anyone which MAC uses an address
// (services/neighbors learns hosts from their frames).
type Solicitation struct {
	// Source is the soliciting host's address; the unspecified address when
	// the host has none yet.
	Source netip.Addr
}

// checkSolicitation validates an ICMPv6 message b (starting at the ICMPv6
// type) received from src with IP hop limit hopLimit (-1 when unknown), as
// RFC 4861 §6.1.1 asks a router to. The ICMPv6 checksum is left to the kernel,
// which verifies it for every raw ICMPv6 socket (RFC 3542 §3.1). It returns
// the solicitation, or the reason it must be silently discarded.
func checkSolicitation(b []byte, hopLimit int, src netip.Addr) (Solicitation, string) {
	switch {
	case hopLimit < 0:
		return Solicitation{}, ReasonNoHopLimit
	case hopLimit != 255:
		return Solicitation{}, ReasonHopLimit
	case len(b) < rsHeaderLen:
		return Solicitation{}, ReasonLength
	case b[0] != icmpTypeRouterSolicitation:
		return Solicitation{}, ReasonType
	case b[1] != 0:
		return Solicitation{}, ReasonCode
	}
	// RFC 4861 §4.1: the source is an address of the sending interface or
	// the unspecified address; a multicast or non-IPv6 source is neither.
	src = src.WithZone("")
	if !src.Is6() || src.Is4In6() || src.IsMulticast() || src.IsLoopback() {
		return Solicitation{}, ReasonSource
	}
	s := Solicitation{Source: src}
	opts := b[rsHeaderLen:]
	for len(opts) > 0 {
		if len(opts) < 2 {
			return Solicitation{}, ReasonOptionLength
		}
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			return Solicitation{}, ReasonOptionLength
		}
		if opts[0] == optSourceLinkLayerAddress && src.IsUnspecified() {
			return Solicitation{}, ReasonSLLAOFromAny
		}
		opts = opts[n:]
	}
	return s, ""
}
