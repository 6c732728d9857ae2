// Package clat is the gizmo's CLAT (RFC 6877, the customer side of
// 464XLAT): on a line with IPv6 only and the ISP's NAT64, the legacy LAN
// hosts' IPv4 is translated statelessly (RFC 7915) to IPv6 towards that
// NAT64. It also runs RFC 7050 discovery of the NAT64 prefix through the
// upstream resolvers, for ISPs that announce their NAT64 by DNS64 only
// (Discovery, discover.go).
//
// # One IPv4 address, NAT44 in front
//
// The legacy hosts sit behind the gizmo's NAT44 as on any other line. Their
// IPv4 to the internet is routed out of clat0 (the default route while the
// CLAT runs), masqueraded there by the kernel to the CLAT's one IPv4
// address, 192.0.0.4 from RFC 7335's range (NAT44Table), and translated 1:1
// to one IPv6 address, the CLAT address: RFC 6877 §6.3 allows this where a
// CLAT has no dedicated /64 per host, and it keeps what the legacy hosts
// have today, with nothing the kernel does replaced:
//
//   - conntrack and the firewall see every legacy flow as IPv4, in both
//     directions: the replies come in on the uplink (below), so an
//     unsolicited packet from the ISP's NAT64 is dropped like any other
//     from the WAN, and the dashboard's NAT44 counters count CLAT traffic;
//   - TTL, fragmentation, Fragmentation Needed and every other ICMP error
//     are the kernel's, from clat0's MTU, which is the uplink's minus 28
//     (RFC 6877 §5: the IPv6 header adds 20 bytes, a fragment header 8
//     more), so a translated packet always fits;
//   - the gizmo's own IPv4 (none else exists on such a line) uses the CLAT
//     too.
//
// A stateless mapping of the whole legacy /24 into a /64 would need no
// NAT44, but it would bypass conntrack (the firewall would have to be
// rebuilt in eBPF to keep unsolicited traffic out) and needs a dedicated
// /64, which a /64 delegation or a shared /64 does not have.
//
// # The CLAT address (gizmo/plan.CLAT decides)
//
//   - a delegation shorter than /64: the last /64 of it, dedicated to the
//     CLAT as RFC 6877 §6.3 recommends (the LAN gets the first): the ISP
//     routes the delegation to the gizmo, nothing needs to answer for it;
//   - a /64 delegation: an address in the LAN /64, held (deprecated, so
//     the gizmo's own traffic never picks it) on the LAN interface, so that
//     no LAN host takes it (lanif);
//   - no delegation, a shared WAN /64 (RFC 7278): an address in it, held on
//     the uplink, so that the kernel answers the ISP router's neighbour
//     solicitations for it (Plan.ClaimOnWAN).
//
// # The datapath
//
// Two tc programs (bpf/clat.c) on tcx hooks: clat_out on clat0's egress
// translates what the kernel routed there and redirects it out of the
// uplink; clat_in at the head of the uplink's ingress translates IPv6 from
// the NAT64 prefix to the CLAT address back to IPv4 and hands it to the
// stack (TC_ACT_OK), so it is routed, de-NATed and filtered as if it had
// come in as IPv4. Everything else it passes on (TCX_NEXT) to the fast
// path and the NAT64 behind it. clat0 is a veth pair with ARP and IPv6
// off; nothing reaches its other end. Reverse path filtering is turned off
// on the uplink (and in "all"): the uplink has no IPv4 address, so the
// kernel would drop every reply; the firewall does the BCP 38 checks.
//
// The program is built from the NAT64's headers (services/nat64/bpf): its
// configuration struct and counters, checksums, the IPv6 extension header
// walk, the RFC 7915 ICMP maps, the RFC 6052 embedding and MSS clamping
// (mss.h: SYNs out are clamped to the uplink's MTU - 60, SYN-ACKs in to
// clat0's MTU - 40). The NAT64's translators proper keep RFC 6146 sessions
// and are not used.
package clat
