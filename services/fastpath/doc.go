// Package fastpath is a software flowtable for the gizmo's native IPv6
// forwarding: established flows skip netfilter and conntrack, the cost the
// firewall adds to every forwarded packet (docs/performance.md). It is the
// idea of the kernel's nftables flowtable, which gokrazy's kernels do not
// build (CONFIG_NF_FLOW_TABLE), done with four tcx programs
// (bpf/fastpath.c; the same no-BTF, no-JIT rules as services/nat64).
//
// # How a flow gets on the fast path
//
// Learners on the egress hooks of uplink0 (LAN→WAN) and lan0 (WAN→LAN)
// see packets after netfilter's postrouting, that is after the firewall's
// forward chain accepted them. They record the flow (LAN address, remote
// address, ports or ICMPv6 echo identifier, protocol) with a bit per
// direction. Only forwarded packets count (the packet came in on the other
// interface: skb_iif; the router's own traffic has none), and only
// between an address in the plan's LAN prefixes and one outside them. TCP
// counts only from the packets after the handshake (ACK without SYN, FIN,
// RST), when conntrack is established.
//
// When both directions were accepted, the programs on the ingress hooks
// forward the flow's packets themselves: IPv6 without extension headers,
// hop limit above 1, bpf_fib_lookup succeeding out of the other
// interface (its MTU check included: FRAG_NEEDED goes to the stack, which
// sends the Packet Too Big, RFC 4443 §3.2), hop limit - 1, then
// bpf_redirect_neigh to the next hop, whose neighbour entry the kernel
// keeps (probes, STALE) as for its own forwarding.
//
// The FIB lookup was the biggest part of the programs' cost, so each
// direction keeps the route it found (interface and next hop) for the
// current clock second, like the kernel's flowtable keeps its dst. Only
// packets that cannot be too big for any IPv6 link use it: at most 1280
// bytes (RFC 8200 §5) and not GSO. Every bigger packet gets its own lookup
// and MTU check. A route change reaches small packets of offloaded flows
// within a second. Anything else returns TCX_NEXT: the NAT64 program,
// if it is later on the hook, and the kernel handle it as before.
//
// # What stays with the stack
//
//   - The first packets of every flow, so the firewall decides as it
//     always did: the default inbound drop, token, prefix and host rules,
//     anti-spoofing. A packet from the WAN with a LAN source never forms a
//     key a learner wrote.
//   - TCP FIN, RST and SYN on an offloaded flow: the flow is marked closing
//     and the rest of the connection goes through conntrack, which sees the
//     close.
//   - One packet per direction every RefreshAfter (20 s): conntrack's entry
//     stays alive (UDP's is 30-120 s), and a direction the firewall stops
//     accepting (conntrack flushed, state invalid) leaves the fast path
//     within 20 s, because only the learners, behind the firewall, move
//     the refresh time.
//   - Flows outside the current LAN prefixes: after renumbering the
//     programs stop matching them at once and Update drops them.
//   - Flows to Plan.Exclude, the NAT64 prefix: the NAT64 program's
//     replies leave lan0 as IPv6, their other direction as IPv4.
//
// The programs do not read the clock: Run writes CLOCK_BOOTTIME into their
// config every second. A clock read per packet (kvm-clock in a VM) cost
// more than any map lookup, and the timeouts need no finer time.
//
// Idle flows leave the table after UDPTimeout, TCPTimeout, ICMPTimeout
// (lazily on lookup and by the reaper every ReapInterval); the table is an
// LRU bounded by Config.MaxFlows, and an evicted flow just goes back to the
// stack and is learned again.
//
// # Off
//
// A plan without LAN prefixes turns the fast path off: the programs leave
// the hooks and conntrack's setting is restored, so that no packet pays
// for a lookup that cannot succeed. In a kernel without a BPF JIT the
// programs run in the interpreter, where an offloaded packet costs more
// instructions than the same packet through the stack, the whole ruleset
// and the accounting table (docs/performance.md, "Without a JIT (APU)");
// the daemon's plan is empty there.
//
// # Conntrack's TCP window check
//
// Conntrack sees the handshake, a packet every 20 s and the close, not the
// segments between, so its TCP window tracking would find the refresh
// packets and the FIN far outside the window it last saw and mark them
// invalid; the firewall would drop the inbound ones. The kernel's own
// flowtable sets "be liberal" on each offloaded conntrack entry for this
// reason. Without per-entry control from BPF, Run sets the namespace-wide
// net.netfilter.nf_conntrack_tcp_be_liberal=1 while it is attached and
// restores the old value when it returns. The trade: conntrack no longer
// checks that the sequence numbers of any TCP segment are in window (the
// acceptability test of RFC 9293 §3.10.7.4), for all flows. An off-path
// attacker who guesses the addresses and ports of a connection can get
// segments with wrong sequence numbers past the firewall to the host,
// whose own TCP stack still checks them (RFC 5961). Established flows on the fast path are not
// checked by conntrack at all, as with the kernel's flowtable.
//
// # Counters
//
// Offloaded packets do not meet nftables: neither the firewall's
// "ipv6-forwarded" counter nor services/accounting's per-address bytes see
// them. Stats reports them (totals, per LAN address and direction, and the
// packets handed to the stack by reason) for the daemon to add.
package fastpath
