// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Stateful NAT64 (RFC 6146) with RFC 7915 header translation, as three tc
 * programs attached with tcx:
 *   nat64_lan on lan0 ingress:    IPv6 to the NAT64 prefix -> IPv4 out uplink0
 *                                 (the WAN pool), or out lan0 to the LAN's own
 *                                 IPv4 devices (the LAN pool)
 *   nat64_wan on uplink0 ingress: IPv4 to the WAN pool address -> IPv6 out lan0
 *   nat64_lan4 on lan0 ingress:   IPv4 from the LAN's devices to the LAN pool
 *                                 address -> IPv6 out lan0
 * Packets that are not ours return TC_ACT_UNSPEC (TCX_NEXT) untouched, so
 * that the next program on the hook runs: with one port (existing-network
 * mode, lan0 == uplink0) both programs share one tcx ingress hook, and
 * TC_ACT_OK (TCX_PASS) would end the chain there, keeping the IPv4 replies
 * from nat64_wan. At the end of the chain the kernel takes NEXT as pass.
 * Packets for us that we cannot translate are dropped and counted, or handed
 * to the kernel with TC_ACT_OK where it does the right thing (pings to the
 * router, ports without a binding): those are ours, and the other program
 * would pass them anyway, as the two match disjoint EtherTypes.
 *
 * Reads go through bpf_skb_load_bytes and writes through bpf_skb_store_bytes:
 * slower than direct packet access by a little, but every bound is checked
 * by the helper and the verifier has no packet pointers to lose track of.
 *
 * Built against the UAPI headers only (no vmlinux.h, no CO-RE): the target
 * kernels have no BTF. For the same reason every function that takes the
 * skb is static: the verifier checks a global function's context argument
 * against the kernel's BTF and refuses the program without it. Functions
 * without the skb may be global (verified once, on their own), which keeps
 * the verifier's work far from its limit (docs/conformance.md, "Kernels without BTF").
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "nat64.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#include "maps.h"
#include "../../../internal/bpfhdr/config.h"
#include "tables.h"
#include "csum.h"
#include "addr.h"
#include "policy.h"
#include "quota.h"
#include "state.h"
#include "parse.h"
#include "hdr.h"
#include "output.h"
#include "mss.h"
#include "frag.h"
#include "icmp_err.h"
#include "xlat64.h"
#include "xlat46.h"

SEC("tc")
int nat64_lan(struct __sk_buff *skb)
{
	struct config *cfg = config_for(skb, ETH_P_IPV6, &nat64_config);
	if (!cfg || !(cfg->pool4 | cfg->lan_pool4))
		return TC_ACT_UNSPEC;
	struct ipv6hdr ip6;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, IP6_HLEN) < 0)
		return TC_ACT_UNSPEC;
	if (ip6.version != 6)
		return TC_ACT_UNSPEC;
	/* The LAN's own devices may have a /96 of their own (F_LAN96: the
	 * PREF64 is the well-known prefix, RFC 6052 §3.1). */
	__u8 via96 = 0;
	if (!pref_match(cfg, &ip6.daddr)) {
		if (!(cfg->flags & F_LAN96) || !lan96_match(cfg, &ip6.daddr))
			return TC_ACT_UNSPEC;
		via96 = 1;
	}
	/* The steps are separate (static, see above) functions called from
	 * here, so that no call chain needs more than the 512 bytes of BPF
	 * stack. */
	struct ext6 e = {.via96 = via96};
	struct l4 l = {};
	int r = xlat64(skb, cfg, &ip6, &e, &l);
	if (r == XLAT_ICMP_ERR)
		r = xlat_icmp6_err(skb, cfg, &ip6, &e, &l);
	else if (r == XLAT_REPLY)
		return icmp6_reply(skb, cfg, &ip6, ((__u32)l.type << 8) | l.code, l.info);
	if (r == XLAT_FORWARD)
		return forward(skb, cfg, FWD_WAN4);
	if (r == XLAT_FORWARD_LAN)
		return forward(skb, cfg, FWD_LAN4);
	return r;
}

/* ingress4 is the IPv4 side of a pool: nat64_wan on uplink0 for the WAN
 * pool, nat64_lan4 on lan0 for the LAN pool (lan, a constant in each). */
static __always_inline int ingress4(struct __sk_buff *skb, int lan)
{
	struct config *cfg = config_for(skb, ETH_P_IP, &nat64_config);
	if (!cfg)
		return TC_ACT_UNSPEC;
	__be32 pool = lan ? cfg->lan_pool4 : cfg->pool4;
	if (!pool)
		return TC_ACT_UNSPEC;
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, IP4_HLEN) < 0)
		return TC_ACT_UNSPEC;
	if (ip.version != 4 || ip.daddr != pool)
		return TC_ACT_UNSPEC;
	/* Only the LAN's own devices talk to the LAN pool: the kernel's
	 * reverse path filter never sees these packets. The gizmo's own
	 * address never arrives from outside. */
	if (lan && (!in_lan4(cfg, ip.saddr) || ip.saddr == pool))
		return TC_ACT_UNSPEC;
	struct l4 l = {};
	int r = xlat46(skb, cfg, &ip, &l);
	if (r == XLAT_ICMP_ERR)
		r = xlat_icmp4_err(skb, cfg, &ip, &l);
	else if (r == XLAT_REPLY)
		return icmp4_reply(skb, cfg, &ip, ((__u32)l.type << 8) | l.code, l.info);
	if (r == XLAT_FORWARD)
		return forward(skb, cfg, FWD_LAN6);
	return r;
}

SEC("tc")
int nat64_wan(struct __sk_buff *skb)
{
	return ingress4(skb, 0);
}

SEC("tc")
int nat64_lan4(struct __sk_buff *skb)
{
	return ingress4(skb, 1);
}
