package plan

import (
	"net/netip"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/lanif"
)

// Interface identifiers of the gizmo's own addresses in every LAN /64. They
// are fixed so that they survive renumbering and are easy to recognise.
const (
	routerIID    = 1    // ::1, the router and the dashboard
	dnsRDNSSIID  = 0x53 // ::53, the resolver advertised in the RA (RDNSS)
	dnsDHCPv6IID = 0x35 // ::35, the resolver sent in DHCPv6 (OPTION_DNS_SERVERS)
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
	return WithIID(ManagementPrefix(ula), routerIID)
}

// DNSAddrs are the DNS service's listening addresses, one per information
// source. The IPv6 ones sit in the ULA /64 so that they never change with the
// ISP's prefix; the DHCPv4 one is the gizmo's legacy address, which legacy
// hosts can reach.
func DNSAddrs(ula netip.Prefix, legacy4 netip.Prefix) state.DNSAddrs {
	m := ManagementPrefix(ula)
	return state.DNSAddrs{
		RDNSS:  WithIID(m, dnsRDNSSIID),
		DHCPv6: WithIID(m, dnsDHCPv6IID),
		DHCPv4: legacy4.Addr(),
	}
}

// LAN returns the addresses the gizmo holds on its LAN interface.
func LAN(st *state.State, now time.Time) lanif.Plan {
	var p lanif.Plan
	if st.ULA.IsValid() {
		m := ManagementPrefix(st.ULA)
		p.Addrs = append(p.Addrs,
			lanif.Addr{Prefix: netip.PrefixFrom(WithIID(m, routerIID), 64)},
			lanif.Addr{Prefix: netip.PrefixFrom(st.LAN.DNS.RDNSS, 64), NoPrefixRoute: true},
			lanif.Addr{Prefix: netip.PrefixFrom(st.LAN.DNS.DHCPv6, 64), NoPrefixRoute: true},
		)
	}
	if d := st.Delegated; d != nil && d.ValidUntil.After(now) {
		p.Addrs = append(p.Addrs, lanif.Addr{
			Prefix:         netip.PrefixFrom(WithIID(LANPrefix(d.Prefix), routerIID), 64),
			PreferredUntil: d.PreferredUntil,
			ValidUntil:     d.ValidUntil,
		})
	}
	// RFC 9096 §3: hosts may keep using addresses in a retired prefix until it
	// becomes invalid, so the gizmo keeps the route to it until then.
	for _, r := range st.Retired {
		if !r.ValidUntil.After(now) {
			continue
		}
		if st.Delegated != nil && LANPrefix(r.Prefix) == LANPrefix(st.Delegated.Prefix) {
			continue
		}
		p.Addrs = append(p.Addrs, lanif.Addr{
			Prefix:         netip.PrefixFrom(WithIID(LANPrefix(r.Prefix), routerIID), 64),
			PreferredUntil: now, // deprecated
			ValidUntil:     r.ValidUntil,
		})
	}
	if st.LAN.Legacy4.IsValid() {
		p.Addrs = append(p.Addrs, lanif.Addr{Prefix: st.LAN.Legacy4})
	}
	return p
}
