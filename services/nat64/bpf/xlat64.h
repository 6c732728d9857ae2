/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv6 -> IPv4 (RFC 7915 §5, RFC 6146 §3.5). Part of nat64.c. */
#ifndef GIZMO_NAT64_XLAT64_H
#define GIZMO_NAT64_XLAT64_H

/* sent64 counts an IPv6 packet translated to IPv4 for dst4 through pool
 * and says where it goes: forward() to the LAN's or the WAN's next hop, or
 * (RFC 6146 §3.8 hairpinning) a packet for the WAN pool's own address back
 * in through the IPv4 side. */
static __always_inline int sent64(struct __sk_buff *skb, const struct config *cfg, int pool, __be32 dst4)
{
	count(C_XLAT_64);
	if (pool == POOL_LAN)
		return XLAT_FORWARD_LAN;
	if (dst4 == cfg->pool4) {
		count(C_HAIRPIN);
		if (set_ethertype(skb, ETH_P_IP) < 0)
			return drop(C_MALFORMED);
		return bpf_redirect(cfg->wan_ifindex, BPF_F_INGRESS);
	}
	return XLAT_FORWARD;
}

/* xlat_icmp6_err translates an ICMPv6 error from the LAN whose inner packet
 * belongs to a session (RFC 7915 §5.2, RFC 6146 §3.5.3). */
static __noinline int xlat_icmp6_err(struct __sk_buff *skb, const struct config *cfg,
				     const struct ipv6hdr *ip6, const struct ext6 *e, struct l4 *o)
{
	if (!cfg || !ip6 || !e || !o)
		return TC_ACT_SHOT;
	int via96 = e->via96;
	__be32 dst4 = v4_of(cfg, &ip6->daddr, via96);
	/* The error goes to the remote through the pool that reaches it; the
	 * packet it quotes came from that remote through the same pool. */
	int pool = pool_for(cfg, dst4, via96);
	if (pool < 0)
		return drop(C_DST_DENIED);
	__be32 src4 = pool_addr4(cfg, pool);
	struct quote6 q = {};
	int r = icmp6_err_read(skb, e, o, pool == POOL_LAN ? cfg->lan_mtu : cfg->wan_mtu, &q);
	if (r)
		return r;
	const struct ipv6hdr *in6 = &q.ip6;
	const struct l4 *il = &q.l;
	if (!(via96 ? lan96_match(cfg, &in6->saddr) : pref_match(cfg, &in6->saddr)))
		return drop(C_NO_SESSION);
	__u8 in_proto = q.nh == IPPROTO_ICMPV6_ ? IPPROTO_ICMP : q.nh;
	__be32 r4 = v4_of(cfg, &in6->saddr, via96);
	if (pool_for(cfg, r4, via96) != pool)
		return drop(C_NO_SESSION);

	struct sess_key sk = {.addr4 = r4, .port6 = il->dport, .proto = in_proto, .pool = pool};
	if (in_proto != IPPROTO_ICMP)
		sk.port4 = il->sport;
	__builtin_memcpy(sk.addr6, &in6->daddr, 16);
	struct sess_val *s = bpf_map_lookup_elem(&nat64_sess, &sk);
	if (!s)
		return drop(C_NO_SESSION);
	__be16 pool_port = s->pool_port;

	/* Inner upper-layer header, rewritten in place first. */
	__u32 l4_off = q.l4_off;
	__u32 avail = skb->len - l4_off;
	if (in_proto == IPPROTO_ICMP) {
		__u8 ot[2] = {il->type, il->code}, t[2] = {il->type == 128 ? 8 : 0, il->code};
		__u16 old_t, new_t;
		__builtin_memcpy(&old_t, ot, 2);
		__builtin_memcpy(&new_t, t, 2);
		__u16 c;
		if (avail >= 4 && bpf_skb_load_bytes(skb, l4_off + 2, &c, 2) == 0) {
			/* ICMPv6 covers a pseudo-header, ICMPv4 does not:
			 * adding the complement of its sum removes it. */
			__u32 d = pseudo6_sum(&in6->saddr, &in6->daddr, q.len, IPPROTO_ICMPV6_);
			__u32 acc = (__u16)~c;
			acc += csum_fold(d);
			acc += (__u16)~old_t;
			acc += new_t;
			acc += (__u16)~il->dport;
			acc += pool_port;
			c = csum_fold(acc);
			STORE(skb, l4_off + 2, &c, 2);
		}
		STORE(skb, l4_off, t, 2);
		STORE(skb, l4_off + 4, &pool_port, 2);
	} else {
		__u32 csum_at = l4_off + il->csum_off;
		if (csum_at + 2 <= skb->len) {
			__u16 c;
			bpf_skb_load_bytes(skb, csum_at, &c, 2);
			if (!(in_proto == IPPROTO_UDP && c == 0)) {
				__be32 na[2] = {r4, src4};
				__u32 d = bpf_csum_diff((__be32 *)&in6->saddr, 32, na, 8, 0);
				__u32 acc = (__u16)~c;
				acc += (d & 0xffff) + (d >> 16);
				acc += (__u16)~il->dport;
				acc += pool_port;
				c = csum_fold(acc);
				if (in_proto == IPPROTO_UDP && c == 0)
					c = 0xffff;
				STORE(skb, csum_at, &c, 2);
			}
		}
		STORE(skb, l4_off + 2, &pool_port, 2);
	}

	__u32 ext, tot;
	if (icmp4_err_len(ip6, e, q.ext, &ext, &tot) < 0)
		return drop(C_MALFORMED);
	struct iphdr inner = ip4_of_quote6(&q, r4, src4);
	struct iphdr outer = ip4_of6(ip6, tot, IPPROTO_ICMP, src4, dst4);
	outer.id = (__be16)bpf_get_prandom_u32();
	if (e->frag)
		/* RFC 7915 §5.1.1: the (atomic) fragment header's identification. */
		outer.id = bpf_htons(bpf_ntohl(e->id) & 0xffff);
	outer.ttl--; /* the router's hop (RFC 7915 §5.1) */
	ip4_csum(&outer);
	r = icmp4_err_put(skb, ext, q.ext, tot, &outer, q.type, q.code, q.info, &inner);
	if (r)
		return r;
	count(C_ICMP_ERR);
	return sent64(skb, cfg, pool, dst4);
}

/* icmp6_no_answer: RFC 4443 §2.4(e.1): no ICMPv6 error answers an ICMPv6
 * error (types below 128). A non-first fragment of an ICMPv6 message cannot
 * tell, and gets no answer either. */
static __always_inline int icmp6_no_answer(struct __sk_buff *skb, const struct ext6 *e)
{
	if (e->nh != IPPROTO_ICMPV6_)
		return 0;
	if (e->frag && e->fo)
		return 1;
	__u8 type;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + e->off, &type, 1) < 0)
		return 1;
	return type < 128;
}

static __noinline int xlat64(struct __sk_buff *skb, const struct config *cfg, struct ipv6hdr *ip6,
			     struct ext6 *ep, struct l4 *lp)
{
	if (!cfg || !ip6 || !ep || !lp)
		return TC_ACT_SHOT;
	if (!lan_source(cfg, &ip6->saddr))
		return drop(C_SRC_NOT_LAN);
	/* RFC 6052 §3.1 and the own networks are checked where a session
	 * is made (and for packets that need none): an existing session
	 * already passed, which spares the lookup per packet. */
	__be32 dst4 = v4_of(cfg, &ip6->daddr, ep->via96);
	int pool = pool_for(cfg, dst4, ep->via96);
	if (pool < 0)
		return drop(C_DST_DENIED);

	__u32 plen, ext;
	int r = ip6_walk(skb, ip6, ep, &plen, &ext);
	if (r)
		return r;

	/* RFC 7915 §5.1: hop limit. The packet expires here. */
	if (ip6->hop_limit <= 1) {
		count(C_TTL_EXPIRED);
		if (icmp6_no_answer(skb, ep))
			return drop(C_ICMP_NOT_ALLOWED);
		lp->type = 3;
		lp->code = 0;
		lp->info = 0;
		return reply_limited(cfg, ICMP_TO_LAN);
	}

	__u8 nh = ep->nh;
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_ICMPV6_)
		return drop(C_UNSUPPORTED);
	__u8 proto = nh == IPPROTO_ICMPV6_ ? IPPROTO_ICMP : nh;
	__u32 tot = plen - ext + IP4_HLEN;
	__u64 now = now_ns(cfg);

	/* RFC 7915 §5.1: DF is set for packets over 1260 bytes only, so that
	 * IPv4 routers may fragment the small ones. */
	__be16 frag = tot > 1260 ? bpf_htons(0x4000) : 0;
	__be16 id = (__be16)bpf_get_prandom_u32();
	if (ep->frag) {
		frag = bpf_htons((ep->fo >> 3) | (ep->mf ? 0x2000 : 0));
		id = (__be16)(bpf_ntohl(ep->id) & 0xffff);
		id = bpf_htons(id);
	}

	/* The IPv4 side: the WAN, or the LAN itself for the LAN pool. */
	__u32 mtu4 = pool == POOL_LAN ? cfg->lan_mtu : cfg->wan_mtu;
	if (!skb->gso_size && tot > mtu4) {
		/* RFC 7915 §5: Packet Too Big with the IPv4 MTU plus 20. */
		count(C_TOO_BIG);
		if (icmp6_no_answer(skb, ep))
			return drop(C_ICMP_NOT_ALLOWED);
		__u32 mtu = mtu4 + 20;
		if (mtu < IPV6_MIN_MTU)
			mtu = IPV6_MIN_MTU;
		lp->type = 2;
		lp->code = 0;
		lp->info = mtu;
		return reply_limited(cfg, ICMP_TO_LAN);
	}

	__u32 l4_off = ETH_HLEN + ep->off;
	/* The first bytes of the upper-layer header as translated (port or
	 * ICMP type, checksum and identifier), written with the IPv4 header
	 * in one store: after the translation the header follows it. */
	__be16 l4w[3] = {};
	__u32 l4n = 0;
	if (ep->frag && ep->fo != 0) {
		/* Non-first fragment: addresses only, no ports to map. The
		 * first fragment carried the L4 checksum fix for all. */
		if (nh == IPPROTO_ICMPV6_)
			return drop(C_UNSUPPORTED);
		int why = refused4(cfg, pool, dst4);
		if (why)
			return drop(why - 1);
		goto build;
	}
	if (load_l4(skb, l4_off, nh, lp) < 0)
		return drop(C_MALFORMED);

	if (nh == IPPROTO_ICMPV6_) {
		if (lp->type >= 1 && lp->type <= 4) {
			int why = refused4(cfg, pool, dst4);
			return why ? drop(why - 1) : XLAT_ICMP_ERR;
		}
		/* A fragmented echo's pseudo-header length is unknown here;
		 * atomic fragments (RFC 6946) are whole. */
		if (lp->type != 128 || (ep->frag && (ep->fo || ep->mf)))
			return drop(C_UNSUPPORTED);
	}

	struct sess_key sk = {.addr4 = dst4, .port6 = lp->sport, .proto = proto, .pool = pool};
	if (proto != IPPROTO_ICMP)
		sk.port4 = lp->dport;
	__builtin_memcpy(sk.addr6, &ip6->saddr, 16);
	/* RFC 6146 §3.5.2.2: only a SYN opens a TCP session. */
	int may_create = proto != IPPROTO_TCP || (lp->flags & TCPF_SYN);
	struct sess_val *s = bpf_map_lookup_elem(&nat64_sess, &sk);
	if (!s) {
		if (!may_create)
			return drop(C_NO_SESSION);
		int why = refused4(cfg, pool, dst4);
		if (why)
			return drop(why - 1);
		/* quota.h: the host is its Ethernet source. */
		struct mac_addr mac = {};
		if (bpf_skb_load_bytes(skb, 6, mac.b, 6) < 0)
			return drop(C_MALFORMED);
		int err = session_new(cfg, &sk, &mac, now);
		if (err)
			return drop(err - 1);
		s = bpf_map_lookup_elem(&nat64_sess, &sk);
		if (!s)
			return drop(C_TABLE_FULL);
	}
	if (proto == IPPROTO_TCP)
		tcp_track(s, lp->flags, 1);
	sess_touch(s, now);
	__be16 pool_port = s->pool_port;

	/* Upper-layer header: port or identifier, and the checksum. */
	__u32 csum_at = l4_off + lp->csum_off;
	if (proto == IPPROTO_ICMP) {
		/* ICMPv6 covers a pseudo-header, ICMPv4 does not (RFC 7915 §5.2). */
		__u32 d = pseudo6_sum(&ip6->saddr, &ip6->daddr, plen - ext, IPPROTO_ICMPV6_);
		__u8 ot[2] = {lp->type, lp->code}, nt[2] = {8, lp->code};
		__u16 o16, n16;
		__builtin_memcpy(&o16, ot, 2);
		__builtin_memcpy(&n16, nt, 2);
		__u16 c;
		if (bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
			return drop(C_MALFORMED);
		__u32 acc = (__u16)~c;
		acc += csum_fold(d); /* adding ~pseudo subtracts it */
		acc += (__u16)~o16;
		acc += n16;
		acc += (__u16)~lp->sport;
		acc += pool_port;
		c = csum_fold(acc);
		l4w[0] = n16;
		l4w[1] = c;
		l4w[2] = pool_port;
		l4n = 6;
	} else {
		__u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
		__be32 na[2] = {pool_addr4(cfg, pool), dst4};
		__u32 d = bpf_csum_diff((__be32 *)&ip6->saddr, 32, na, 8, 0);
		if (bpf_l4_csum_replace(skb, csum_at, 0, d, BPF_F_PSEUDO_HDR | mangled) < 0 ||
		    bpf_l4_csum_replace(skb, csum_at, lp->sport, pool_port, 2 | mangled) < 0)
			return drop(C_MALFORMED);
		l4w[0] = pool_port;
		l4n = 2;
		/* mss.h: the IPv4 peer's segments must fit the LAN as IPv6. */
		__u32 lim = mss_limit(cfg->lan_mtu, IP6_HLEN + 20);
		if (proto == IPPROTO_TCP && (lp->flags & TCPF_SYN) && lim &&
		    clamp_mss(skb, l4_off, csum_at, lim) < 0)
			return drop(C_MALFORMED);
	}

build:;
	struct {
		struct iphdr ip;
		__be16 l4w[3];
	} h = {};
	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.tos = tclass(ip6);
	h.ip.tot_len = bpf_htons(tot);
	h.ip.id = id;
	h.ip.frag_off = frag;
	h.ip.ttl = ip6->hop_limit - 1;
	h.ip.protocol = proto;
	h.ip.saddr = pool_addr4(cfg, pool);
	h.ip.daddr = dst4;
	ip4_csum(&h.ip);
	h.l4w[0] = l4w[0];
	h.l4w[1] = l4w[1];
	h.l4w[2] = l4w[2];
	if (l4n > sizeof(h.l4w))
		l4n = sizeof(h.l4w);

	__u32 bytes = skb->len - ETH_HLEN;
	if (ext && bpf_skb_adjust_room(skb, -(__s32)ext, BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0) < 0)
		return drop(C_MALFORMED);
	/* forward() writes the Ethernet header. */
	if (STORE(skb, ETH_HLEN, &h, IP4_HLEN + l4n) < 0)
		return drop(C_MALFORMED);
	host_account(&ip6->saddr, bytes, 1, pool);
	return sent64(skb, cfg, pool, dst4);
}

#endif
