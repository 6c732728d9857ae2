/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 -> IPv6 on clat0 egress (RFC 7915 §4, stateless). Part of clat.c. */
#ifndef GIZMO_CLAT_XLAT_OUT_H
#define GIZMO_CLAT_XLAT_OUT_H

/* Two IPv6 addresses in a row, for one bpf_csum_diff over both. */
struct addr6_pair {
	struct in6_addr src, dst;
};

/* out is what the steps of one IPv4 -> IPv6 translation share: the BPF
 * calling convention has five arguments. */
struct out {
	struct addr6_pair a; /* the new source and destination */
	__u32 hlen;          /* IPv4 header length */
	__u32 l4_off;        /* upper-layer header, from the frame's start */
	__u32 l4len;         /* upper-layer length (of this fragment) */
	__u8 is_frag;
	__u8 zero_udp;       /* UDP without checksum: computed after the swap */
	__u16 pad;
};

/* out_l4 rewrites the upper-layer header of the first (or only) fragment
 * for the IPv6 pseudo-header (RFC 7915 §4.5) and turns an ICMP echo into
 * ICMPv6 (§4.2). A UDP checksum of zero, which IPv6 does not allow, is
 * left for out_swap. */
static __noinline int out_l4(struct __sk_buff *skb, const struct config *cfg, const struct iphdr *ip, struct l4 *lp,
			     struct out *x)
{
	if (!cfg || !ip || !lp || !x)
		return TC_ACT_SHOT;
	__u32 l4_off = x->l4_off;
	const struct addr6_pair *a = &x->a;
	__u8 proto = ip->protocol;
	__u32 csum_at = l4_off + lp->csum_off;
	if (proto == IPPROTO_ICMP) {
		/* An ICMPv6 checksum covers the whole message, which a
		 * fragment does not have. */
		if (x->is_frag)
			return drop(C_UNSUPPORTED);
		__u32 pseudo = pseudo6_sum((const void *)&a->src, (const void *)&a->dst, x->l4len, IPPROTO_ICMPV6_);
		if (icmp_type_csum(skb, csum_at, lp->type, lp->type == 8 ? 128 : 129, lp->code, pseudo, 1) < 0)
			return drop(C_MALFORMED);
		__u8 t = lp->type == 8 ? 128 : 129;
		if (STORE(skb, l4_off, &t, 1) < 0)
			return drop(C_MALFORMED);
		return 0;
	}
	__u16 c = 1;
	if (proto == IPPROTO_UDP && bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
		return drop(C_MALFORMED);
	if (c == 0) {
		if (x->is_frag)
			return drop(C_UNSUPPORTED);
		x->zero_udp = 1;
		return 0;
	}
	__u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be32 oa[2] = {ip->saddr, ip->daddr};
	__u32 d = bpf_csum_diff(oa, 8, (__be32 *)a, 32, 0);
	if (bpf_l4_csum_replace(skb, csum_at, 0, d, BPF_F_PSEUDO_HDR | mangled) < 0)
		return drop(C_MALFORMED);
	/* mss.h: the peer's segments come back over uplink0 as IPv6. */
	__u32 lim = mss_limit(cfg->lan_mtu, IP6_HLEN + 20);
	if (proto == IPPROTO_TCP && (lp->flags & TCPF_SYN) && lim && clamp_mss(skb, l4_off, csum_at, lim) < 0)
		return drop(C_MALFORMED);
	return 0;
}

/* out_swap replaces the IPv4 header by ip6, with a fragment header after
 * it for a fragment (RFC 7915 §4.1), and fills in a UDP checksum that was
 * zero (§4.5). */
static __noinline int out_swap(struct __sk_buff *skb, const struct iphdr *ip, const struct ipv6hdr *ip6,
			       const struct out *x)
{
	if (!ip || !ip6 || !x)
		return TC_ACT_SHOT;
	int r = ip6_put(skb, x->hlen, ip6);
	if (r)
		return r;
	if (set_ethertype(skb, ETH_P_IPV6) < 0)
		return drop(C_MALFORMED);
	if (x->is_frag) {
		__u16 fo = bpf_ntohs(ip->frag_off);
		return frag6_put(skb, ip->protocol, ((fo & 0x1fff) << 3) | ((fo & 0x2000) ? 1 : 0), ip->id);
	}
	if (x->zero_udp)
		return udp6_csum_fill(skb, ip6, x->l4len);
	return 0;
}

/* xlat_out translates an IPv4 packet that leaves by clat0. */
static __noinline int xlat_out(struct __sk_buff *skb, const struct config *cfg, struct iphdr *ip, struct l4 *lp)
{
	if (!cfg || !ip || !lp)
		return TC_ACT_SHOT;
	if (ip->version != 4)
		return drop(C_MALFORMED);
	__u32 hlen, tot;
	int r = ip4_lengths(skb, ip, &hlen, &tot);
	if (r)
		return r;
	/* The CLAT's IPv6 address stands for one IPv4 address (RFC 6877
	 * §6.3): what the NAT44 did not map to it is not translated. */
	if (ip->saddr != cfg->pool4)
		return drop(C_SRC_NOT_LAN);
	/* RFC 7915 §4.1: an unexpired source route is not translated; other
	 * options are left behind. */
	if (hlen > IP4_HLEN && ip4_source_routed(skb, hlen))
		return drop(C_UNSUPPORTED);
	__u8 proto = ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP)
		return drop(C_UNSUPPORTED);
	__u16 fo = bpf_ntohs(ip->frag_off);
	__u32 foff = (fo & 0x1fff) * 8;
	struct out x = {.hlen = hlen, .l4_off = ETH_HLEN + hlen, .l4len = tot - hlen};
	x.is_frag = (fo & 0x2000) || foff;
	__builtin_memcpy(&x.a.src, cfg->router6, 16);
	embed4(cfg, ip->daddr, (void *)&x.a.dst);

	if (foff == 0) {
		if (load_l4(skb, x.l4_off, proto, lp) < 0)
			return drop(C_MALFORMED);
		if (proto == IPPROTO_ICMP) {
			if (lp->type == 3 || lp->type == 11 || lp->type == 12)
				return x.is_frag ? drop(C_UNSUPPORTED) : XLAT_ICMP_ERR;
			/* RFC 7915 §4.2: only echo crosses; the other
			 * messages are silently dropped. */
			if (lp->type != 8 && lp->type != 0)
				return drop(C_UNSUPPORTED);
		}
		r = out_l4(skb, cfg, ip, lp, &x);
		if (r)
			return r;
	} else if (proto == IPPROTO_ICMP) {
		return drop(C_UNSUPPORTED);
	}

	__u32 plen = x.l4len + (x.is_frag ? 8 : 0);
	if (!skb->gso_size && plen + IP6_HLEN > cfg->lan_mtu)
		/* clat0's MTU keeps this from happening (service.go). */
		return drop(C_NEEDS_FRAG);

	/* RFC 7915 §4.1: the router decrements once; the kernel did, when it
	 * forwarded the packet to clat0, so the hop limit is the TTL. */
	__u8 nexthdr = x.is_frag ? NEXTHDR_FRAGMENT : (proto == IPPROTO_ICMP ? IPPROTO_ICMPV6_ : proto);
	struct ipv6hdr ip6 = ip6_of4(ip, plen, nexthdr, &x.a.src, &x.a.dst);
	r = out_swap(skb, ip, &ip6, &x);
	if (r)
		return r;
	count(C_XLAT_46);
	return XLAT_FORWARD;
}

/* xlat_out_icmp_err translates an ICMPv4 error that leaves by clat0 (RFC
 * 7915 §4.2): the kernel or a legacy host answering a packet that came in
 * through the CLAT. Its quoted packet went to the CLAT's IPv4 address. */
static __noinline int xlat_out_icmp_err(struct __sk_buff *skb, const struct config *cfg, const struct iphdr *ip,
					struct l4 *o)
{
	if (!cfg || !ip || !o)
		return TC_ACT_SHOT;
	__u32 hlen = (ip->ihl & 0xf) * 4;
	struct quote4 q = {};
	int r = icmp4_err_read(skb, cfg, ip, o, &q);
	if (r)
		return r;
	if (q.ip.daddr != cfg->pool4)
		return drop(C_NO_SESSION);
	__u8 in_proto = q.ip.protocol;
	const struct l4 *il = &q.l;

	struct addr6_pair in6a, out6a;
	embed4(cfg, q.ip.saddr, (void *)&in6a.src);
	__builtin_memcpy(&in6a.dst, cfg->router6, 16);
	__builtin_memcpy(&out6a.src, cfg->router6, 16);
	embed4(cfg, ip->daddr, (void *)&out6a.dst);

	/* The quoted upper-layer header, rewritten in place first; a quote
	 * cut short keeps what it has. */
	__u32 l4_off = q.l4_off;
	if (in_proto == IPPROTO_ICMP) {
		__u32 pseudo = pseudo6_sum((const void *)&in6a.src, (const void *)&in6a.dst, q.len, IPPROTO_ICMPV6_);
		__u8 t = il->type == 8 ? 128 : 129;
		icmp_type_csum(skb, l4_off + 2, il->type, t, il->code, pseudo, 1);
		STORE(skb, l4_off, &t, 1);
	} else {
		__u32 csum_at = l4_off + il->csum_off;
		__u16 c;
		if (csum_at + 2 <= skb->len && bpf_skb_load_bytes(skb, csum_at, &c, 2) == 0 &&
		    !(in_proto == IPPROTO_UDP && c == 0)) {
			__be32 oa[2] = {q.ip.saddr, q.ip.daddr};
			__u32 d = bpf_csum_diff(oa, 8, (__be32 *)&in6a, 32, 0);
			__u32 acc = (__u16)~c;
			acc += (d & 0xffff) + (d >> 16);
			c = csum_fold(acc);
			if (in_proto == IPPROTO_UDP && c == 0)
				c = 0xffff;
			STORE(skb, csum_at, &c, 2);
		}
	}

	__u32 plen;
	if (icmp6_err_len(ip, hlen, q.ihl, &plen) < 0)
		return drop(C_MALFORMED);
	struct ipv6hdr inner = ip6_of_quote4(&q, &in6a.src, &in6a.dst);
	struct ipv6hdr outer = ip6_of4(ip, plen, IPPROTO_ICMPV6_, &out6a.src, &out6a.dst);
	r = icmp6_err_put(skb, hlen, q.ihl, plen, &outer, q.type, q.code, q.info, &inner);
	if (r)
		return r;
	r = icmp6_err_csum(skb, &outer.saddr, &outer.daddr, plen);
	if (r)
		return r;
	if (set_ethertype(skb, ETH_P_IPV6) < 0)
		return drop(C_MALFORMED);
	count(C_ICMP_ERR);
	count(C_XLAT_46);
	return XLAT_FORWARD;
}

#endif
