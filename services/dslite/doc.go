// Package dslite is the gizmo's B4 on a DS-Lite line (RFC 6333): an ISP
// that gives IPv6 only and carries IPv4 in a softwire, IPv4 in IPv6
// (RFC 2473), to its AFTR, which it names in DHCPv6 (OPTION_AFTR_NAME,
// RFC 6334).
//
// The service resolves the AFTR's name through the ISP's resolvers (AAAA,
// RFC 6334 §4) and reports the address; once the plan names an AFTR and
// a B4 address, it runs the softwire: two eBPF programs on the WAN
// interface's tcx hooks (bpf/dslite.c), since gokrazy's kernels have no
// ip6_tunnel, and the kernel's IPv4 side of it, 192.0.0.2/29 on the WAN
// and a default route via 192.0.0.1 with the softwire's MTU (RFC 6333
// §5.7, kernel.go). Everything IPv4 that leaves the WAN, the gizmo's own,
// the NAT44 of the legacy hosts (masqueraded to 192.0.0.2) and the
// NAT64's output (pool 192.0.0.2), is encapsulated to the AFTR on the
// WAN's egress; what the AFTR sends back to the B4 address is
// decapsulated at the head of the WAN's ingress, before the NAT64 and the
// stack see it.
//
// What it does not do: fragment the outer packet (RFC 6333 §5.3 allows
// the B4 a 1500-byte IPv4 MTU that way; the gizmo offers the WAN's MTU
// less 40 instead, with Fragmentation Needed and an MSS clamp), follow the
// path MTU towards the AFTR (a Packet Too Big about the softwire lowers
// nothing), or reassemble outer fragments from the AFTR (dropped and
// counted as outer_fragment).
package dslite
