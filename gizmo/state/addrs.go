package state

import (
	"net/netip"

	"codeberg.org/monostack/gizmo/services/dhcp6pd"
)

// Interface identifiers of the gizmo's own addresses in every LAN /64. They
// are fixed so that they survive renumbering and are easy to recognise.
const (
	RouterIID    = 1    // ::1, the router and the dashboard
	DNSRDNSSIID  = 0x53 // ::53, the resolver advertised in the RA (RDNSS)
	DNSDHCPv6IID = 0x35 // ::35, the resolver sent in DHCPv6 (OPTION_DNS_SERVERS)
	// CLATIID is the CLAT's address in its /64 (RFC 6877 §6.3), ::464
	// as in 464XLAT.
	CLATIID = 0x464
)

// LANPrefix is the /64 the LAN uses from a delegation: the first one
// (RFC 7084 L-2 leaves the choice to the router; the first is predictable).
func LANPrefix(delegated netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(delegated.Masked().Addr(), 64)
}

// ManagementPrefix is the ULA /64 on the LAN.
func ManagementPrefix(ula netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(ula.Masked().Addr(), 64)
}

// WithIID returns the address with interface identifier iid in the /64 p.
func WithIID(p netip.Prefix, iid uint64) netip.Addr {
	b := p.Masked().Addr().As16()
	for i := 0; i < 8; i++ {
		b[15-i] = byte(iid >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// RouterULA is the gizmo's stable management address: the dashboard and
// gizmo.home.arpa live here.
func RouterULA(ula netip.Prefix) netip.Addr {
	return WithIID(ManagementPrefix(ula), RouterIID)
}

// DNSAddrsIn are the DNS service's listening addresses, one per information
// source. The IPv6 ones sit in the ULA /64 so that they never change with
// the ISP's prefix; the DHCPv4 one is the gizmo's legacy address, which
// legacy hosts can reach.
func DNSAddrsIn(ula netip.Prefix, legacy4 netip.Prefix) DNSAddrs {
	m := ManagementPrefix(ula)
	return DNSAddrs{
		RDNSS:  WithIID(m, DNSRDNSSIID),
		DHCPv6: WithIID(m, DNSDHCPv6IID),
		DHCPv4: legacy4.Addr(),
	}
}

// The on-link /64 of the existing-network mode (State.OnLink).
const (
	// onLinkULASubnet is the subnet ID of the on-link /64 in the ULA
	// (RFC 4193 §3.1), so that it is easy to recognise ("64" for NAT64)
	// and never the management /64 (subnet 0).
	onLinkULASubnet = 0x64
	// OnLinkDNSIID is the DNS64's interface identifier in the on-link /64,
	// <the /64>:1::53: it lies outside the NAT64 /96 (NAT64In), whose
	// addresses have zeros in bits 64..95.
	OnLinkDNSIID = 1<<48 | 0x53
)

// OnLinkULA is the ULA /64 the existing-network mode announces on-link
// when nothing is delegated: subnet 0x64 of the ULA. Invalid without a ULA
// that has room for it (/56 or shorter).
func OnLinkULA(ula netip.Prefix) netip.Prefix {
	if !ula.IsValid() || !ula.Addr().Is6() || ula.Bits() > 56 {
		return netip.Prefix{}
	}
	b := ula.Masked().Addr().As16()
	b[7] |= onLinkULASubnet
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// NAT64In is the NAT64 prefix inside an on-link /64: its first /96, a
// network-specific prefix (RFC 6052 §2.2; a /96 has no u-octet to keep
// zero, and bits 64..95 of the /64 are zero).
func NAT64In(onLink netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(onLink.Masked().Addr(), 96)
}

// OnLinkDNS is the DNS64's address in an on-link /64 (OnLinkDNSIID).
func OnLinkDNS(onLink netip.Prefix) netip.Addr {
	return WithIID(onLink, OnLinkDNSIID)
}

// UsableDelegation reports whether a delegated prefix is one the gizmo
// puts on its LAN: an IPv6 prefix (not IPv4-mapped, RFC 4291 §2.5.5.2)
// that the DHCPv6-PD client's DelegationPolicy accepts: global unicast,
// not a ULA, no longer than /64 and no shorter than /32. The client
// refuses other prefixes when they arrive; this check keeps a state saved
// before that rule held, or a bug, from putting a ULA or a /8 on the LAN,
// in the firewall's sets or in the WAN's unreachable routes.
func UsableDelegation(p netip.Prefix) bool {
	return p.IsValid() && p.Addr().Is6() && !p.Addr().Is4In6() && dhcp6pd.DelegationPolicy(p) == nil
}

// LANLegacySubnet is the ULA subnet (hex 46: IPv4 devices reached from
// IPv6) whose first /96 holds the LAN's own IPv4 devices as IPv6-only
// hosts reach them, when the PREF64 cannot (LANLegacyPrefix). It is not
// the on-link /64's subnet (0x64), so that the two never share addresses.
const LANLegacySubnet = 0x46

// LANLegacyPrefix is <ULA>:46::/96: a network-specific prefix (RFC 6052
// §2.2, bits 64-71 zero) of the gizmo's own, inside the ULA /48 that the
// RA routes to the gizmo, and stable across renumbering like the ULA.
func LANLegacyPrefix(ula netip.Prefix) netip.Prefix {
	b := ula.Masked().Addr().As16()
	b[6], b[7] = LANLegacySubnet>>8, LANLegacySubnet&0xff
	return netip.PrefixFrom(netip.AddrFrom16(b), 96)
}
