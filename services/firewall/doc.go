// Package firewall is the gizmo's stateful firewall: one nftables table,
// `inet gizmo`, which the gizmo owns entirely and replaces whole on every
// change.
//
// # Shape
//
// The daemon computes a Plan from its state (gizmo/plan.Firewall). Render
// turns the Plan into a Ruleset, a small typed model of the table, without
// touching the kernel; Ruleset.String prints each rule exactly as
// `nft list table inet gizmo` shows it after the apply, which the tests
// check. Service.Apply validates the Plan, renders it and sends the table
// in one nfnetlink batch: create the table if missing, delete it, add it
// again with every counter, set, chain and rule. The kernel commits a
// batch atomically, so packets meet either the old ruleset or the new one;
// a table left by a crashed daemon is replaced, never duplicated. Counter
// values are read just before the swap and carried into the new table
// (packets counted between that read and the commit are lost from the
// totals; the window is one netlink round trip).
//
// Addresses, ports and prefixes live in sets, so the number of rules
// depends on the number of LAN interfaces and of distinct prefix lengths,
// never on hosts or addresses. Prefix sets are hash sets looked up with
// the address masked to the set's prefix length, not interval sets: on
// Linux 6.18 a new interval (rbtree) set misses lookups for a moment after
// the batch commits, which showed as lost probes in TestNoGapAcrossReapply;
// hash set elements become visible with the commit itself.
//
// # Policy
//
//   - input (policy drop): loopback and established flows are accepted
//     first. From the LAN (input_lan): ingress filtering (BCP 38, RFC
//     3704: the gizmo's own WAN addresses dropped and counted apart, a
//     source outside the LAN prefixes dropped, :: only for ICMPv6 — DAD
//     and MLD — and 0.0.0.0 only for the DHCPv4 server), then everything —
//     the management plane (dashboard :80, gokrazy :8080, DNS, DHCP, SSH)
//     lives there. From uplink0 (input_wan): spoofed sources dropped, the
//     management ports dropped and counted, then ICMPv6 per RFC 4890 §4.4,
//     DHCPv6 replies (udp 547→546 from link-local), DHCPv4 replies (udp
//     67→68), ICMPv4 errors and echo accepted; the rest is dropped.
//   - forward (policy drop): established flows are accepted and counted
//     (native IPv6 or legacy IPv4) by the first two rules, the only ones
//     most packets meet. A TCP segment without SYN that conntrack does
//     not know is dropped next (RFC 9293 §3.5), so that a flow whose entry
//     was deleted does not come back. From the LAN (forward_lan): the
//     gizmo's WAN addresses, an IPv6 source outside the LAN /64s (:: and
//     link-local included) and an IPv4 source outside the legacy pool
//     (0.0.0.0 included) are dropped — then anything may leave. From the WAN (forward_wan): a
//     source inside the delegation, the retired delegations, our ULA /48 or
//     the legacy pool is dropped (RFC 7084, RFC 6092 REC-4); related ICMP,
//     ICMPv6 per RFC 4890 §4.3 and the owner's inbound rules (token,
//     prefix, host) are accepted; the rest is dropped.
//   - postrouting (nat, srcnat 100): only the legacy pool is translated,
//     to the WAN address in NAT44's own port range (snat; the NAT64 program
//     allocates below it on the same address), or masqueraded when no WAN
//     address or range is known. IPv6 is never translated.
//
// The source checks run only for packets that do not belong to an
// established flow: a flow's source was checked on its first packet. A
// spoofed packet does reach conntrack, but its entry is never confirmed
// when the packet is dropped, so floods do not fill the conntrack table.
//
// Removing an inbound rule or an exposed port ends the flows it let in:
// Apply deletes their conntrack entries once the new ruleset is in place
// (flows.go), and the rule against TCP without SYN keeps either side's
// next segment from opening them again.
//
// # Hook order and the NAT64 datapath
//
// The NAT64 program (services/nat64) is attached with tcx at ingress of
// lan0 and uplink0. tc ingress runs before netfilter, so for a packet
// arriving on either interface the order is:
//
//	tc ingress (tcx: NAT64) → [netfilter] prerouting: defrag (-400),
//	conntrack (-200) → routing → input or forward (0, ours) →
//	postrouting: our NAT44 (100), conntrack confirm → tc egress → wire
//
// A packet the program translates is redirected (bpf_redirect to the other
// interface's egress, or its ingress for hairpinning) and never meets
// netfilter: no conntrack entry, no firewall rule, no counter here. Its
// policy is the program's own (LAN sources only, RFC 6052 §3.1). What the
// program hands to the stack instead (TC_ACT_OK) is filtered normally:
//
//   - IPv4 to the pool address that has no binding or is not TCP, UDP or
//     ICMP: input on uplink0. ICMPv4 errors and echo are accepted (the
//     kernel answers pings and learns PMTU); the rest is dropped as
//     unsolicited, which is what the stack would do with it anyway.
//   - IPv6 to the NAT64 prefix that the program leaves to the kernel (GSO
//     packets, packets needing an ICMPv6 error): forward from the LAN, which
//     accepts anything with a LAN source.
//   - IPv4 from lan0 with the pool address (the WAN's) as its source is
//     never the program's: it redirects what it translates. Such a packet
//     is a LAN host claiming the gizmo's address, dropped and counted
//     (drop-lan-wan-source).
//   - IPv6 the program has translated but leaves to the stack on uplink0
//     comes from the NAT64 prefix to a LAN host with no conntrack entry.
//     If the program marks such packets (skb->mark), set Plan.NAT64Mark to
//     the mark and forward accepts them; unmarked, they are dropped as
//     unsolicited inbound traffic.
//
// # The eBPF fast path
//
// services/fastpath shares the tcx ingress hooks (after or before the
// NAT64, either works) and adds learners at tcx egress, which runs after
// postrouting: it learns only what this ruleset forwarded, and once both
// directions of a native IPv6 flow passed here, redirects the flow's
// packets at ingress, before netfilter. Those packets meet no rule and no
// counter here (the daemon adds the fast path's counters to
// CounterIPv6Forwarded). The first packets of every flow, TCP FIN/RST/SYN,
// one packet per direction every 20 s and everything that is not an
// established flow still come here, so every decision above stands. It
// sets nf_conntrack_tcp_be_liberal=1 while it runs (see its package doc).
// TestFastpathWithRuleset runs both together.
package firewall
