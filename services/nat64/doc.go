// Package nat64 is the gizmo's stateful NAT64 (RFC 6146) with RFC 7915
// header translation, running in eBPF on the tcx ingress hooks of the LAN
// and WAN interfaces. Go loads and configures the programs, expires
// sessions and reads the counters; the packets never leave the kernel's
// fast path. See docs/conformance.md for what is and is not done.
//
// Verdicts on the hook: a program returns TC_ACT_UNSPEC (TCX_NEXT) for a
// packet that is not NAT64 traffic, so that the next program on the hook
// sees it; the kernel passes it after the last one. With one port (the
// existing-network mode, LAN == WAN interface) both programs share one hook,
// and a TC_ACT_OK (TCX_PASS) there would end the chain before the WAN
// program saw the IPv4 replies. TC_ACT_OK is kept for packets a program
// owns and deliberately leaves to the kernel (to_stack: IPv4 to a pool port
// without binding, other protocols; GSO packets needing an ICMP error): the
// other program matches only the other EtherType, so it would pass them too.
//
// # Session limits
//
// The session table is bounded, and so is what one party can take of it.
// A session opened from the LAN counts against three limits at once; the
// defaults, for the table of DefaultMaxSessions (131,072) entries, are the
// set a home router ships:
//
//   - its /64: three quarters of the table (98,304). The hosts of a home
//     share one /64 (SLAAC from the delegated prefix), so this is the
//     LAN's limit, high enough that the LAN is never throttled below most
//     of the table; the last quarter stays for the ULA /64, a retired /64
//     during renumbering and any other LAN prefix, which a busy main /64
//     can then not lock out.
//   - its host, counted by the Ethernet source of its packets: an eighth
//     of the table (16,384). The /64 cannot tell the hosts in it apart,
//     the MAC can: a host that rotates its addresses (RFC 8981 temporary
//     addresses, or an attacker taking a new address per flow) meets its
//     own limit and leaves its neighbours theirs. 16,384 live sessions are
//     about 68 new connections a second held for TCP's 4-minute transitory
//     lifetime (RFC 6146 §4), far above what a browser or a game console
//     does; eight hosts at their limit would still leave the table's
//     last quarter. The limit is a cap, not a reservation: hosts that
//     stay below it leave the room to the others.
//   - its address: half of its host's (8,192), so that a host's busiest
//     address (the stable one, or the current temporary address) may use
//     most of the host's share while the next temporary address still
//     finds room.
//
// A session opened from the IPv4 side counts against its binding only
// (DefaultMaxInboundSessionsPerBinding), never against the host. Each
// refusal is counted: prefix_limit_refused, mac_limit_refused,
// host_limit_refused, inbound_session_refused.
//
// The MAC limit trusts the Ethernet source, as the switch does. A host that
// forges a new source MAC per flow escapes its own limit but not its
// /64's, so the ULA and the other prefixes keep their quarter; hosts behind
// a LAN-side router, or a Wi-Fi repeater that rewrites source MACs, share
// one MAC's limit.
package nat64
