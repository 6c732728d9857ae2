/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What leaves the program: ICMP errors sent back, and forwarding of translated packets. Part of nat64.c. */
#ifndef GIZMO_NAT64_OUTPUT_H
#define GIZMO_NAT64_OUTPUT_H

static __always_inline int swap_macs(struct __sk_buff *skb)
{
	__u8 m[12], s[12];
	if (bpf_skb_load_bytes(skb, 0, m, 12) < 0)
		return -1;
	__builtin_memcpy(s, m + 6, 6);
	__builtin_memcpy(s + 6, m, 6);
	return STORE(skb, 0, s, 12);
}

/* icmp6_reply turns the IPv6 packet in skb into an ICMPv6 error about it
 * (RFC 4443 §2.4: as much of the packet as fits in 1280 bytes) and sends it
 * back where it came from. */
static __noinline int icmp6_reply(struct __sk_buff *skb, const struct config *cfg,
				  const struct ipv6hdr *orig, __u32 typecode, __u32 info)
{
	if (!cfg || !orig)
		return TC_ACT_SHOT;
	__u8 type = typecode >> 8, code = typecode & 0xff;
	if (skb->gso_size)
		return TC_ACT_OK; /* the kernel forwards GSO and sends its own errors */
	__u32 l3 = skb->len - ETH_HLEN;
	__u32 quote = l3;
	if (quote > IPV6_MIN_MTU - IP6_HLEN - 8)
		quote = IPV6_MIN_MTU - IP6_HLEN - 8;
	if (bpf_skb_adjust_room(skb, IP6_HLEN + 8, BPF_ADJ_ROOM_MAC, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_change_tail(skb, ETH_HLEN + IP6_HLEN + 8 + quote, 0) < 0)
		return TC_ACT_SHOT;

	struct ipv6hdr ip = {};
	ip.version = 6;
	ip.payload_len = bpf_htons(8 + quote);
	ip.nexthdr = IPPROTO_ICMPV6_;
	ip.hop_limit = 64;
	__builtin_memcpy(&ip.saddr, cfg->router6, 16);
	__builtin_memcpy(&ip.daddr, &orig->saddr, 16);
	__u8 icmp[8] = {type, code, 0, 0};
	__be32 inf = bpf_htonl(info);
	__builtin_memcpy(icmp + 4, &inf, 4);
	if (STORE(skb, ETH_HLEN, &ip, IP6_HLEN) < 0 || STORE(skb, ETH_HLEN + IP6_HLEN, icmp, 8) < 0)
		return TC_ACT_SHOT;
	__u32 sum = pseudo6_sum(&ip.saddr, &ip.daddr, 8 + quote, IPPROTO_ICMPV6_);
	if (csum_skb(skb, ETH_HLEN + IP6_HLEN, 8 + quote, &sum) < 0)
		return TC_ACT_SHOT;
	__u16 c = csum_fold(sum);
	if (STORE(skb, ETH_HLEN + IP6_HLEN + 2, &c, 2) < 0 || swap_macs(skb) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* icmp4_reply is icmp6_reply for IPv4 (RFC 1812 §4.3.2.3: at most 576
 * bytes), sent from the pool address the packet was sent to. */
static __noinline int icmp4_reply(struct __sk_buff *skb, const struct config *cfg,
				  const struct iphdr *orig, __u32 typecode, __u32 info)
{
	if (!cfg || !orig)
		return TC_ACT_SHOT;
	__u8 type = typecode >> 8, code = typecode & 0xff;
	if (skb->gso_size)
		return TC_ACT_SHOT;
	__u32 quote = skb->len - ETH_HLEN;
	if (quote > ICMP4_ERR_MAX - IP4_HLEN - 8)
		quote = ICMP4_ERR_MAX - IP4_HLEN - 8;
	if (bpf_skb_adjust_room(skb, IP4_HLEN + 8, BPF_ADJ_ROOM_MAC, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_change_tail(skb, ETH_HLEN + IP4_HLEN + 8 + quote, 0) < 0)
		return TC_ACT_SHOT;

	struct iphdr ip = {};
	ip.version = 4;
	ip.ihl = 5;
	ip.tot_len = bpf_htons(IP4_HLEN + 8 + quote);
	ip.id = (__be16)bpf_get_prandom_u32();
	ip.ttl = 64;
	ip.protocol = IPPROTO_ICMP;
	ip.saddr = orig->daddr;
	ip.daddr = orig->saddr;
	ip4_csum(&ip);
	__u8 icmp[8] = {type, code, 0, 0};
	__be32 inf = bpf_htonl(info);
	__builtin_memcpy(icmp + 4, &inf, 4);
	if (STORE(skb, ETH_HLEN, &ip, IP4_HLEN) < 0 || STORE(skb, ETH_HLEN + IP4_HLEN, icmp, 8) < 0)
		return TC_ACT_SHOT;
	__u32 sum = 0;
	if (csum_skb(skb, ETH_HLEN + IP4_HLEN, 8 + quote, &sum) < 0)
		return TC_ACT_SHOT;
	__u16 c = csum_fold(sum);
	if (STORE(skb, ETH_HLEN + IP4_HLEN + 2, &c, 2) < 0 || swap_macs(skb) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* forward sends a translated packet on: an IPv6 one to the LAN (out
 * FWD_LAN6), an IPv4 one to the WAN (FWD_WAN4) or, from the LAN pool, back
 * to the LAN's own devices (FWD_LAN4). bpf_fib_lookup finds the next hop,
 * and bpf_redirect_neigh resolves it when the neighbour table does not
 * know it yet. The translators leave the Ethernet header to it, so that
 * the addresses and the EtherType go in one store. The lookup takes the
 * addresses of the packet's new header, loaded with one helper call:
 * without a JIT that is cheaper than computing them again. */
#define FWD_LAN6 0
#define FWD_WAN4 1
#define FWD_LAN4 2
static __noinline int forward(struct __sk_buff *skb, const struct config *cfg, int out)
{
	if (!cfg)
		return TC_ACT_SHOT;
	int v6 = out == FWD_LAN6;
	__u32 ifindex = out == FWD_WAN4 ? cfg->wan_ifindex : cfg->lan_ifindex;
	__u8 eth[ETH_HLEN];
	__be16 proto = bpf_htons(v6 ? ETH_P_IPV6 : ETH_P_IP);
	if (cfg->flags & F_NO_FIB) {
		if (STORE(skb, 12, &proto, 2) < 0)
			return drop(C_MALFORMED);
		return bpf_redirect(ifindex, 0);
	}

	struct bpf_fib_lookup fib = {};
	fib.ifindex = ifindex;
	if (v6) {
		fib.family = AF_INET6;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, fib.ipv6_src, 32) < 0)
			return drop(C_MALFORMED);
	} else {
		fib.family = AF_INET;
		__be32 a[2];
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 12, a, 8) < 0)
			return drop(C_MALFORMED);
		fib.ipv4_src = a[0];
		fib.ipv4_dst = a[1];
	}
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(eth, fib.dmac, 6);
		__builtin_memcpy(eth + 6, fib.smac, 6);
		__builtin_memcpy(eth + 12, &proto, 2);
		if (STORE(skb, 0, eth, ETH_HLEN) < 0)
			return drop(C_MALFORMED);
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		if (STORE(skb, 12, &proto, 2) < 0)
			return drop(C_MALFORMED);
		struct bpf_redir_neigh nh = {};
		nh.nh_family = fib.family;
		if (fib.family == AF_INET6)
			__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
		else
			nh.ipv4_nh = fib.ipv4_dst;
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		/* The egress MTU is below the one in the plan (which sends
		 * the ICMP errors): the plan is behind the link. */
		return drop(C_NEEDS_FRAG);
	return drop(C_NO_ROUTE);
}

#endif
