/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv6 -> IPv4 on uplink0 ingress (RFC 7915 §5, stateless). Part of clat.c. */
#ifndef GIZMO_CLAT_XLAT_IN_H
#define GIZMO_CLAT_XLAT_IN_H

/* in is what the steps of one IPv6 -> IPv4 translation share: the BPF
 * calling convention has five arguments. */
struct in {
	struct ext6 e; /* extension headers, upper-layer protocol */
	struct l4 l;   /* upper-layer fields */
	__be32 src4;   /* the source's IPv4 form */
	__u32 l4len;   /* upper-layer length */
};

/* in_l4 rewrites the upper-layer header of the first (or only) fragment
 * for the IPv4 pseudo-header and turns an ICMPv6 echo into ICMP (RFC 7915
 * §5.2, §5.5). */
static __noinline int in_l4(struct __sk_buff *skb, const struct config *cfg, const struct ipv6hdr *ip6, struct in *x)
{
	if (!cfg || !ip6 || !x)
		return TC_ACT_SHOT;
	const struct ext6 *e = &x->e;
	struct l4 *lp = &x->l;
	__be32 src4 = x->src4;
	__u32 l4len = x->l4len;
	__u32 l4_off = ETH_HLEN + e->off;
	__u32 csum_at = l4_off + lp->csum_off;
	if (e->nh == IPPROTO_ICMPV6_) {
		/* A fragmented echo's pseudo-header length is unknown here. */
		if (e->frag)
			return drop(C_UNSUPPORTED);
		__u32 pseudo = pseudo6_sum((const void *)&ip6->saddr, (const void *)&ip6->daddr, l4len,
					   IPPROTO_ICMPV6_);
		__u8 t = lp->type == 128 ? 8 : 0;
		if (icmp_type_csum(skb, csum_at, lp->type, t, lp->code, pseudo, 0) < 0 || STORE(skb, l4_off, &t, 1) < 0)
			return drop(C_MALFORMED);
		return 0;
	}
	__u16 c = 1;
	if (e->nh == IPPROTO_UDP && bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
		return drop(C_MALFORMED);
	if (c != 0) {
		/* A zero UDP checksum (RFC 6935) means none in IPv4 too. */
		__u64 mangled = e->nh == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
		__be32 na[2] = {src4, cfg->pool4};
		__u32 d = bpf_csum_diff((__be32 *)&ip6->saddr, 32, na, 8, 0);
		if (bpf_l4_csum_replace(skb, csum_at, 0, d, BPF_F_PSEUDO_HDR | mangled) < 0)
			return drop(C_MALFORMED);
	}
	/* mss.h: the legacy host's segments leave by clat0 as IPv4. */
	__u32 lim = mss_limit(cfg->wan_mtu, IP4_HLEN + 20);
	if (e->nh == IPPROTO_TCP && (lp->flags & TCPF_SYN) && lim && clamp_mss(skb, l4_off, csum_at, lim) < 0)
		return drop(C_MALFORMED);
	return 0;
}

/* xlat_in translates an IPv6 packet to the CLAT's address. Packets that
 * are not from the NAT64 prefix (neighbour discovery for an address the
 * gizmo claims, anything else sent to it) go to the next program and the
 * stack, except ICMPv6 errors, which are the CLAT's to translate. */
static __noinline int xlat_in(struct __sk_buff *skb, const struct config *cfg, struct ipv6hdr *ip6, struct in *x)
{
	if (!cfg || !ip6 || !x)
		return TC_ACT_SHOT;
	struct ext6 *ep = &x->e;
	struct l4 *lp = &x->l;
	__u32 plen, ext;
	int r = ip6_walk(skb, ip6, ep, &plen, &ext);
	if (r)
		return r;
	__u8 nh = ep->nh;
	int first = !(ep->frag && ep->fo);
	int from_pref = pref_match(cfg, (const void *)&ip6->saddr);
	if (first && nh == IPPROTO_ICMPV6_) {
		if (load_l4(skb, ETH_HLEN + ep->off, nh, lp) < 0)
			return drop(C_MALFORMED);
		if (lp->type >= 1 && lp->type <= 4)
			return XLAT_ICMP_ERR;
	}
	if (!from_pref) {
		count(C_TO_STACK);
		return TC_ACT_UNSPEC;
	}
	if (nh == IPPROTO_ICMPV6_ && (!first || (lp->type != 128 && lp->type != 129)))
		/* RFC 7915 §5.2: single-hop messages and the unknown are
		 * silently dropped. */
		return drop(C_UNSUPPORTED);
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_ICMPV6_)
		return drop(C_UNSUPPORTED);
	__be32 src4 = extract4(cfg, (const void *)&ip6->saddr);
	x->src4 = src4;
	x->l4len = plen - ext;
	__u32 tot = plen - ext + IP4_HLEN;
	if (tot > 0xffff)
		return drop(C_UNSUPPORTED);

	/* RFC 7915 §5.1: DF only above 1260 bytes, so that IPv4 routers may
	 * split the small ones; a fragment keeps its identity. */
	__be16 frag = tot > 1260 ? bpf_htons(0x4000) : 0;
	__be16 id = (__be16)bpf_get_prandom_u32();
	if (ep->frag) {
		frag = bpf_htons((ep->fo >> 3) | (ep->mf ? 0x2000 : 0));
		id = bpf_htons(bpf_ntohl(ep->id) & 0xffff);
	}
	if (first) {
		if (nh != IPPROTO_ICMPV6_ && load_l4(skb, ETH_HLEN + ep->off, nh, lp) < 0)
			return drop(C_MALFORMED);
		r = in_l4(skb, cfg, ip6, x);
		if (r)
			return r;
	}

	struct iphdr ip = {};
	ip.version = 4;
	ip.ihl = 5;
	ip.tos = tclass(ip6);
	ip.tot_len = bpf_htons(tot);
	ip.id = id;
	ip.frag_off = frag;
	/* RFC 7915 §5.1: the kernel decrements the TTL when it forwards the
	 * packet on (and answers one that expires). */
	ip.ttl = ip6->hop_limit;
	ip.protocol = nh == IPPROTO_ICMPV6_ ? IPPROTO_ICMP : nh;
	ip.saddr = src4;
	ip.daddr = cfg->pool4;
	ip4_csum(&ip);

	if (ext && bpf_skb_adjust_room(skb, -(__s32)ext, BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0) < 0)
		return drop(C_UNSUPPORTED);
	if (set_ethertype(skb, ETH_P_IP) < 0 || STORE(skb, ETH_HLEN, &ip, IP4_HLEN) < 0)
		return drop(C_MALFORMED);
	count(C_XLAT_64);
	return TC_ACT_OK;
}

/* in_quote rewrites the upper-layer header quoted in an ICMPv6 error for
 * IPv4 (RFC 7915 §5.2): the CLAT sent that packet from its address to
 * PREF64 + r4. A quote cut short keeps what it has. */
static __noinline int in_quote(struct __sk_buff *skb, const struct config *cfg, const struct quote6 *q,
				__be32 r4)
{
	if (!cfg || !q)
		return TC_ACT_SHOT;
	const struct ipv6hdr *in6 = &q->ip6;
	const struct l4 *il = &q->l;
	__u32 l4_off = q->l4_off;
	if (q->nh == IPPROTO_ICMPV6_) {
		__u32 pseudo = pseudo6_sum((const void *)&in6->saddr, (const void *)&in6->daddr, q->len,
					   IPPROTO_ICMPV6_);
		__u8 t = il->type == 128 ? 8 : 0;
		icmp_type_csum(skb, l4_off + 2, il->type, t, il->code, pseudo, 0);
		STORE(skb, l4_off, &t, 1);
		return 0;
	}
	__u32 csum_at = l4_off + il->csum_off;
	__u16 c;
	if (csum_at + 2 <= skb->len && bpf_skb_load_bytes(skb, csum_at, &c, 2) == 0 && c != 0) {
		__be32 na[2] = {cfg->pool4, r4};
		__u32 d = bpf_csum_diff((__be32 *)&in6->saddr, 32, na, 8, 0);
		__u32 acc = (__u16)~c;
		acc += (d & 0xffff) + (d >> 16);
		c = csum_fold(acc);
		if (c == 0)
			c = 0xffff;
		STORE(skb, csum_at, &c, 2);
	}
	return 0;
}

/* xlat_in_icmp_err translates an ICMPv6 error about a packet the CLAT sent
 * (RFC 7915 §5.2): from the NAT64 (its source in PREF64) or from a router
 * on the way there, whose source becomes 192.0.0.8 (RFC 6791, RFC 7600). */
static __noinline int xlat_in_icmp_err(struct __sk_buff *skb, const struct config *cfg, const struct ipv6hdr *ip6,
				       const struct ext6 *e, struct l4 *o)
{
	if (!cfg || !ip6 || !e || !o)
		return TC_ACT_SHOT;
	__be32 src4 = DUMMY4;
	if (pref_match(cfg, (const void *)&ip6->saddr))
		src4 = extract4(cfg, (const void *)&ip6->saddr);
	struct quote6 q = {};
	int r = icmp6_err_read(skb, e, o, cfg->wan_mtu, &q);
	if (r)
		return r;
	/* The quoted packet is one the CLAT sent: from its address to the
	 * NAT64 prefix. */
	__u32 s[4], c6[4];
	__builtin_memcpy(s, &q.ip6.saddr, 16);
	__builtin_memcpy(c6, cfg->router6, 16);
	if (s[0] != c6[0] || s[1] != c6[1] || s[2] != c6[2] || s[3] != c6[3] ||
	    !pref_match(cfg, (const void *)&q.ip6.daddr))
		return drop(C_NO_SESSION);
	__be32 r4 = extract4(cfg, (const void *)&q.ip6.daddr);
	r = in_quote(skb, cfg, &q, r4);
	if (r)
		return r;

	__u32 ext, tot;
	if (icmp4_err_len(ip6, e, q.ext, &ext, &tot) < 0)
		return drop(C_MALFORMED);
	struct iphdr inner = ip4_of_quote6(&q, cfg->pool4, r4);
	/* The kernel routes the error on and takes the hop from its TTL. */
	struct iphdr outer = ip4_of6(ip6, tot, IPPROTO_ICMP, src4, cfg->pool4);
	outer.id = (__be16)bpf_get_prandom_u32();
	ip4_csum(&outer);
	r = icmp4_err_put(skb, ext, q.ext, tot, &outer, q.type, q.code, q.info, &inner);
	if (r)
		return r;
	if (set_ethertype(skb, ETH_P_IP) < 0)
		return drop(C_MALFORMED);
	count(C_ICMP_ERR);
	count(C_XLAT_64);
	return TC_ACT_OK;
}

#endif
