/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 -> IPv6 (RFC 7915 §4, RFC 6146 §3.5). Part of nat64.c. */
#ifndef GIZMO_NAT64_XLAT46_H
#define GIZMO_NAT64_XLAT46_H

/* xlat_icmp4_err translates an ICMPv4 error about a packet a pool sent
 * (RFC 7915 §4.2, RFC 6146 §3.5.3). */
static __noinline int xlat_icmp4_err(struct __sk_buff *skb, const struct config *cfg,
				     const struct iphdr *ip, struct l4 *o)
{
	if (!cfg || !ip || !o)
		return TC_ACT_SHOT;
	__u32 hlen = (ip->ihl & 0xf) * 4;
	int pool = pool_of(cfg, ip);
	int hairpin = pool == POOL_WAN && ip->saddr == cfg->pool4;
	struct quote4 q = {};
	int r = icmp4_err_read(skb, cfg, ip, o, &q);
	if (r)
		return r;
	const struct iphdr *in4 = &q.ip;
	const struct l4 *il = &q.l;
	__u8 in_proto = in4->protocol;
	if (in4->saddr != ip->daddr)
		return drop(C_MALFORMED);

	struct bib4_key bk = {.port4 = il->sport, .proto = in_proto, .pool = pool};
	struct bib4_val *b = bpf_map_lookup_elem(&nat64_bib4, &bk);
	if (!b)
		return drop(C_NO_SESSION);
	struct sess_key sk = {.addr4 = in4->daddr, .port6 = b->port, .proto = in_proto, .pool = pool};
	if (in_proto != IPPROTO_ICMP)
		sk.port4 = il->dport;
	__builtin_memcpy(sk.addr6, b->addr, 16);
	if (!bpf_map_lookup_elem(&nat64_sess, &sk))
		return drop(C_NO_SESSION);
	__be16 port6 = b->port;
	/* The quoted packet's new source and destination, in a row for one
	 * bpf_csum_diff over both. */
	struct in6_addr quoted6[2], s6;
	struct in6_addr *host6 = &quoted6[0], *r6 = &quoted6[1];
	__builtin_memcpy(host6, b->addr, 16);
	embed_pool(cfg, pool, in4->daddr, r6);
	embed_pool(cfg, pool, ip->saddr, &s6);

	__u32 l4_off = q.l4_off;
	if (in_proto == IPPROTO_ICMP) {
		__u8 ot[2] = {il->type, il->code}, nt[2] = {il->type == 8 ? 128 : 129, il->code};
		__u16 o16, n16, c;
		__builtin_memcpy(&o16, ot, 2);
		__builtin_memcpy(&n16, nt, 2);
		if (bpf_skb_load_bytes(skb, l4_off + 2, &c, 2) == 0) {
			__u32 d = pseudo6_sum(host6, r6, q.len, IPPROTO_ICMPV6_);
			__u32 acc = (__u16)~c;
			acc += (d & 0xffff) + (d >> 16);
			acc += (__u16)~o16;
			acc += n16;
			acc += (__u16)~il->sport;
			acc += port6;
			c = csum_fold(acc);
			STORE(skb, l4_off + 2, &c, 2);
		}
		STORE(skb, l4_off, nt, 2);
		STORE(skb, l4_off + 4, &port6, 2);
	} else {
		__u32 csum_at = l4_off + il->csum_off;
		__u16 c;
		if (csum_at + 2 <= skb->len && bpf_skb_load_bytes(skb, csum_at, &c, 2) == 0 &&
		    !(in_proto == IPPROTO_UDP && c == 0)) {
			__be32 oa[2] = {in4->saddr, in4->daddr};
			__u32 d = bpf_csum_diff(oa, 8, (__be32 *)quoted6, 32, 0);
			__u32 acc = (__u16)~c;
			acc += (d & 0xffff) + (d >> 16);
			acc += (__u16)~il->sport;
			acc += port6;
			c = csum_fold(acc);
			if (in_proto == IPPROTO_UDP && c == 0)
				c = 0xffff;
			STORE(skb, csum_at, &c, 2);
		}
		STORE(skb, l4_off, &port6, 2);
	}

	__u32 plen;
	if (icmp6_err_len(ip, hlen, q.ihl, &plen) < 0)
		return drop(C_MALFORMED);
	struct ipv6hdr inner = ip6_of_quote4(&q, host6, r6);
	struct ipv6hdr outer = ip6_of4(ip, plen, IPPROTO_ICMPV6_, &s6, host6);
	/* The router's hop (RFC 7915 §4.1), taken already from a hairpinned
	 * packet on its way in (RFC 6146 §3.8). */
	if (!hairpin)
		outer.hop_limit--;
	r = icmp6_err_put(skb, hlen, q.ihl, plen, &outer, q.type, q.code, q.info, &inner);
	if (r)
		return r;
	r = icmp6_err_csum(skb, &s6, host6, plen);
	if (r)
		return r;
	count(C_ICMP_ERR);
	count(C_XLAT_46);
	return XLAT_FORWARD;
}

static __noinline int xlat46(struct __sk_buff *skb, const struct config *cfg, struct iphdr *ip,
			     struct l4 *lp)
{
	if (!cfg || !ip || !lp)
		return TC_ACT_SHOT;
	__u32 hlen, tot;
	int r = ip4_lengths(skb, ip, &hlen, &tot);
	if (r)
		return r;
	/* The stack is bypassed, so its header checksum check too. */
	if (hlen == IP4_HLEN) {
		/* The usual header is on the stack already. */
		if (csum_fold(bpf_csum_diff(0, 0, (__be32 *)ip, IP4_HLEN, 0)) != 0)
			return drop(C_MALFORMED);
	} else {
		__u32 hsum = 0;
		if (csum_skb(skb, ETH_HLEN, hlen, &hsum) < 0 || csum_fold(hsum) != 0)
			return drop(C_MALFORMED);
	}
	/* RFC 7915 §4.1: a packet with an unexpired source route is not
	 * translated (the options are dropped otherwise). */
	if (hlen > IP4_HLEN && ip4_source_routed(skb, hlen))
		return drop(C_UNSUPPORTED);
	__u8 proto = ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) {
		count(C_TO_STACK);
		return TC_ACT_OK;
	}
	/* Hairpinned packets come from our own pool address (RFC 6146 §3.8);
	 * their TTL was already decremented on the way in. */
	int pool = pool_of(cfg, ip);
	int hairpin = pool == POOL_WAN && ip->saddr == cfg->pool4;
	__u16 fo = bpf_ntohs(ip->frag_off);
	__u32 foff = (fo & 0x1fff) * 8;
	int mf = (fo & 0x2000) != 0;
	int df = (fo & 0x4000) != 0;
	int is_frag = mf || foff;
	__u32 l4_off = ETH_HLEN + hlen;
	__u32 l4len = tot - hlen;
	__u64 now = now_ns(cfg);

	struct in6_addr host6;
	__be16 port6 = 0;
	struct sess_val *s = 0;

	if (foff) {
		struct frag4_key fk = {.src = ip->saddr, .id = ip->id, .proto = proto, .pool = pool};
		struct frag4_val *fv = bpf_map_lookup_elem(&nat64_frag4, &fk);
		if (!fv)
			return drop(C_FRAG_NO_STATE);
		/* The state lives as long as reassembly waits for the rest
		 * (RFC 791 §3.2's timer): a later fragment with the same
		 * source and identification belongs to no datagram the host
		 * still waits for. */
		if (now - fv->first_ns > FRAG4_TIMEOUT_NS) {
			bpf_map_delete_elem(&nat64_frag4, &fk);
			return drop(C_FRAG_EXPIRED);
		}
		__builtin_memcpy(&host6, fv->addr6, 16);
		if (proto == IPPROTO_ICMP)
			return drop(C_UNSUPPORTED);
	} else {
		if (load_l4(skb, l4_off, proto, lp) < 0)
			return drop(C_MALFORMED);
		if (proto == IPPROTO_ICMP) {
			if (lp->type == 3 || lp->type == 11 || lp->type == 12) {
				if (is_frag)
					return drop(C_UNSUPPORTED);
				if (!hairpin && ip->ttl <= 1) {
					/* RFC 1812 §4.3.2.7: never an ICMP
					 * error about an ICMP error. */
					count(C_TTL_EXPIRED);
					return drop(C_ICMP_NOT_ALLOWED);
				}
				return XLAT_ICMP_ERR;
			}
			if (lp->type != 0 && lp->type != 8) {
				count(C_TO_STACK);
				return TC_ACT_OK;
			}
			if (is_frag)
				return drop(C_UNSUPPORTED);
		}
		struct bib4_key bk = {.port4 = lp->dport, .proto = proto, .pool = pool};
		struct bib4_val *b = bpf_map_lookup_elem(&nat64_bib4, &bk);
		if (!b) {
			/* A hairpinned packet is already translated, from the
			 * pool address: the stack would drop it as a martian
			 * (its own source on uplink0). Dropped here, counted. */
			if (hairpin)
				return drop(C_NO_SESSION);
			/* Echo requests without a binding are for the router. */
			/* Local sockets, the firewall's NAT44, or a port
			 * unreachable from the kernel (RFC 6146 §3.5.2.2). */
			count(C_NO_SESSION);
			count(C_TO_STACK);
			return TC_ACT_OK;
		}
		__builtin_memcpy(&host6, b->addr, 16);
		port6 = b->port;
		struct sess_key sk = {.addr4 = ip->saddr, .port6 = port6, .proto = proto, .pool = pool};
		if (proto != IPPROTO_ICMP)
			sk.port4 = lp->sport;
		__builtin_memcpy(sk.addr6, &host6, 16);
		s = bpf_map_lookup_elem(&nat64_sess, &sk);
		if (!s) {
			/* Address-dependent filtering (RFC 6146 §3.5.1,
			 * §3.5.2.2): a remote the binding already talks to
			 * may open a new UDP or TCP session from another
			 * port; TCP only with a SYN. Unsolicited SYNs to a
			 * binding without that remote are dropped instead of
			 * held for 6 s (§3.5.2.2 allows either). An ICMP
			 * query session is its remote and identifier whole,
			 * so no query from the IPv4 side opens one (§3.5.3:
			 * it must match an existing session). */
			struct adf_key ak = {.addr4 = ip->saddr, .port4 = lp->dport, .proto = proto, .pool = pool};
			/* A static binding is an explicit invitation from the
			 * IPv4 side (a port forward): no filtering. */
			int stat = b->flags & BIB_STATIC;
			int open = stat || (proto != IPPROTO_ICMP && bpf_map_lookup_elem(&nat64_adf, &ak));
			if (!open || (proto == IPPROTO_ICMP && lp->type != 8))
				return drop(C_FILTERED);
			if (proto == IPPROTO_TCP && !(lp->flags & TCPF_SYN))
				return drop(C_FILTERED);
			/* quota.h: the sessions the IPv4 side opens are
			 * bounded per binding and charged to the binding,
			 * never to the host. The bound is this NAT64's
			 * policy against a remote spraying source ports at a
			 * binding (each would be a session): for TCP, RFC
			 * 6146 §3.5.2.2 lets a NAT64 drop externally
			 * initiated connections altogether; for UDP it goes
			 * past §3.5.1, which would open the session once the
			 * filter admits the remote. A static binding (a port
			 * forward, an explicit invitation) may take a host's
			 * share. */
			__u32 qb = quota_bind_slot(proto, lp->dport);
			__u64 *nb = bpf_map_lookup_elem(&nat64_quotabind, &qb);
			if (!nb)
				return drop(C_MALFORMED);
			__u32 lim = (b->flags & BIB_STATIC) ? cfg->max_sessions_per_host : cfg->max_inbound_per_binding;
			if (*nb >= lim)
				return drop(C_INBOUND_REFUSED);
			struct sess_val nv = {.last_ns = now, .pool_port = lp->dport, .flags = SESS_INBOUND};
			if (proto == IPPROTO_TCP)
				nv.state = TCP_V4_INIT;
			long err = bpf_map_update_elem(&nat64_sess, &sk, &nv, BPF_NOEXIST);
			if (err && err != -EEXIST)
				return drop(C_TABLE_FULL);
			if (err == 0)
				__sync_fetch_and_add(nb, 1);
			s = bpf_map_lookup_elem(&nat64_sess, &sk);
			if (!s)
				return drop(C_TABLE_FULL);
			if (bpf_map_update_elem(&nat64_adf, &ak, &now, BPF_ANY) < 0)
				count(C_ADF_FULL);
		}
		if (proto == IPPROTO_TCP)
			tcp_track(s, lp->flags, 0);
		sess_touch(s, now);
	}

	/* RFC 1812 §4.3.2.7: no ICMP error about a non-initial fragment,
	 * nor to a source that is not one host. */
	int may_answer = !foff && ip4_src_unicast(ip->saddr);
	if (!hairpin && ip->ttl <= 1) {
		count(C_TTL_EXPIRED);
		if (!may_answer)
			return drop(C_ICMP_NOT_ALLOWED);
		lp->type = 11;
		lp->code = 0;
		lp->info = 0;
		return reply_limited(cfg, ICMP_TO_WAN);
	}

	__u32 plen = l4len + (is_frag ? 8 : 0);
	if (!skb->gso_size && plen + IP6_HLEN > cfg->lan_mtu) {
		if (df) {
			/* RFC 7915 §4: fragmentation needed, MTU minus 20. */
			count(C_TOO_BIG);
			if (!may_answer)
				return drop(C_ICMP_NOT_ALLOWED);
			lp->type = 3;
			lp->code = 4;
			lp->info = cfg->lan_mtu - 20;
			return reply_limited(cfg, ICMP_TO_WAN);
		}
		/* RFC 7915 §4: fragment (frag.h). */
		if (proto == IPPROTO_ICMP || hlen != IP4_HLEN)
			return drop(C_NEEDS_FRAG);
		int sz = frag46_split(skb, cfg, ip, l4len, &host6);
		if (sz == -1)
			return drop(C_NEEDS_FRAG);
		if (sz < 0)
			return drop(C_MALFORMED);
		l4len = sz;
		mf = 1;
		is_frag = 1;
		plen = l4len + 8;
	}

	struct in6_addr src6;
	embed_pool(cfg, pool, ip->saddr, &src6);

	int udp_zero = 0;
	if (foff == 0) {
		__u32 csum_at = l4_off + lp->csum_off;
		if (proto == IPPROTO_ICMP) {
			__u8 ot[2] = {lp->type, lp->code}, nt[2] = {lp->type == 8 ? 128 : 129, lp->code};
			__u16 o16, n16, c;
			__builtin_memcpy(&o16, ot, 2);
			__builtin_memcpy(&n16, nt, 2);
			if (bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
				return drop(C_MALFORMED);
			__u32 d = pseudo6_sum(&src6, &host6, l4len, IPPROTO_ICMPV6_);
			__u32 acc = (__u16)~c;
			acc += (d & 0xffff) + (d >> 16);
			acc += (__u16)~o16;
			acc += n16;
			acc += (__u16)~lp->dport;
			acc += port6;
			c = csum_fold(acc);
			if (STORE(skb, l4_off, nt, 2) < 0 || STORE(skb, csum_at, &c, 2) < 0 ||
			    STORE(skb, l4_off + 4, &port6, 2) < 0)
				return drop(C_MALFORMED);
		} else {
			__u16 c = 1;
			if (proto == IPPROTO_UDP && bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
				return drop(C_MALFORMED);
			if (c == 0) {
				/* RFC 7915 §4.5: IPv6 needs a UDP checksum;
				 * computed after the header swap below. */
				if (is_frag)
					return drop(C_UNSUPPORTED);
				if (STORE(skb, l4_off + 2, &port6, 2) < 0)
					return drop(C_MALFORMED);
				udp_zero = 1;
			} else {
				__u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
				__be32 oa[2] = {ip->saddr, ip->daddr};
				struct in6_addr na[2] = {src6, host6};
				__u32 d = bpf_csum_diff(oa, 8, (__be32 *)na, 32, 0);
				if (bpf_l4_csum_replace(skb, csum_at, 0, d, BPF_F_PSEUDO_HDR | mangled) < 0 ||
				    bpf_l4_csum_replace(skb, csum_at, lp->dport, port6, 2 | mangled) < 0 ||
				    STORE(skb, l4_off + 2, &port6, 2) < 0)
					return drop(C_MALFORMED);
			}
		}
		/* mss.h: the IPv6 host's segments must fit the IPv4 side as
		 * IPv4: the WAN, or the LAN for the LAN pool. A hairpinned SYN
		 * never crosses the WAN. */
		__u32 lim = mss_limit(pool == POOL_LAN ? cfg->lan_mtu : cfg->wan_mtu, IP4_HLEN + 20);
		if (proto == IPPROTO_TCP && (lp->flags & TCPF_SYN) && !hairpin && lim &&
		    clamp_mss(skb, l4_off, csum_at, lim) < 0)
			return drop(C_MALFORMED);
		if (mf) {
			struct frag4_key fk = {.src = ip->saddr, .id = ip->id, .proto = proto, .pool = pool};
			struct frag4_val fv = {.first_ns = now};
			__builtin_memcpy(fv.addr6, &host6, 16);
			bpf_map_update_elem(&nat64_frag4, &fk, &fv, BPF_ANY);
		}
	}

	__u8 nh = proto == IPPROTO_ICMP ? IPPROTO_ICMPV6_ : proto;
	struct ipv6hdr ip6 = ip6_of4(ip, plen, is_frag ? NEXTHDR_FRAGMENT : nh, &src6, &host6);
	/* The router's hop (RFC 7915 §4.1), taken already from a hairpinned
	 * packet on its way in (RFC 6146 §3.8). */
	if (!hairpin)
		ip6.hop_limit--;

	__u32 bytes = skb->len - ETH_HLEN;
	/* forward() writes the Ethernet header. */
	r = ip6_put(skb, hlen, &ip6);
	if (r)
		return r;
	if (is_frag)
		r = frag6_put(skb, nh, (foff & 0xfff8) | (mf ? 1 : 0), ip->id);
	else if (udp_zero)
		r = udp6_csum_fill(skb, &ip6, l4len);
	if (r)
		return r;
	host_account(&host6, bytes, 0, pool);
	count(C_XLAT_46);
	return XLAT_FORWARD;
}

#endif
