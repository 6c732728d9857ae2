package state

import "net/netip"

// Interface identifiers of the gizmo's own addresses in every LAN /64. They
// are fixed so that they survive renumbering and are easy to recognise.
const (
	RouterIID    = 1    // ::1, the router and the dashboard
	DNSRDNSSIID  = 0x53 // ::53, the resolver advertised in the RA (RDNSS)
	DNSDHCPv6IID = 0x35 // ::35, the resolver sent in DHCPv6 (OPTION_DNS_SERVERS)
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

// LANLegacySubnet is the ULA subnet (hex 64, after the NAT64 it serves)
// whose first /96 holds the LAN's own IPv4 devices as IPv6-only hosts
// reach them, when the PREF64 cannot (LANLegacyPrefix).
const LANLegacySubnet = 0x64

// LANLegacyPrefix is <ULA>:64::/96: a network-specific prefix (RFC 6052
// §2.2, bits 64-71 zero) of the gizmo's own, inside the ULA /48 that the
// RA routes to the gizmo, and stable across renumbering like the ULA.
func LANLegacyPrefix(ula netip.Prefix) netip.Prefix {
	b := ula.Masked().Addr().As16()
	b[6], b[7] = LANLegacySubnet>>8, LANLegacySubnet&0xff
	return netip.PrefixFrom(netip.AddrFrom16(b), 96)
}
