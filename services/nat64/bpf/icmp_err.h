/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The ICMP error translation steps (RFC 7915 §4.2, §5.2) that the NAT64
 * and the CLAT share: what differs between them (the addresses, the hop
 * limit, the session and address checks) stays with the caller. Part of
 * nat64.c and clat.c; needs maps.h, csum.h, parse.h and hdr.h. */
#ifndef GIZMO_NAT64_ICMP_ERR_H
#define GIZMO_NAT64_ICMP_ERR_H

/* icmp6_err_len sets plen to the payload length of the ICMPv6 error that
 * takes the place of the ICMPv4 error ip (a header of hlen bytes, quoting
 * one of ihl): [v4 hlen][icmp 8][inner v4 ihl][rest] becomes
 * [v6 40][icmp6 8][inner v6 40][rest], at most 1280 bytes (RFC 4443 §2.4
 * c). -1: ip is too short for what it quotes. */
static __always_inline int icmp6_err_len(const struct iphdr *ip, __u32 hlen, __u32 ihl, __u32 *plen)
{
	__u32 tot4 = bpf_ntohs(ip->tot_len);
	if (tot4 < hlen + 8 + ihl)
		return -1;
	*plen = tot4 - hlen + (IP6_HLEN - ihl);
	if (*plen > IPV6_MIN_MTU - IP6_HLEN)
		*plen = IPV6_MIN_MTU - IP6_HLEN;
	return 0;
}

/* icmp4_err_len sets ext (ip6's extension headers, as e found them) and
 * tot for the ICMPv4 error that takes the place of the ICMPv6 error ip6,
 * whose quote has a fragment header of iext bytes:
 * [v6 40][ext][icmp6 8][inner v6 40][iext][rest] becomes
 * [v4 20][icmp 8][inner v4 20][rest], at most 576 bytes (RFC 1812
 * §4.3.2.3). -1: ip6 is too short for what it quotes. */
static __always_inline int icmp4_err_len(const struct ipv6hdr *ip6, const struct ext6 *e, __u32 iext, __u32 *ext,
					 __u32 *tot)
{
	*ext = e->off - IP6_HLEN;
	__u32 plen = bpf_ntohs(ip6->payload_len);
	if (plen < *ext + 8 + IP6_HLEN + iext)
		return -1;
	*tot = plen - *ext - iext;
	if (*tot > ICMP4_ERR_MAX)
		*tot = ICMP4_ERR_MAX;
	return 0;
}

/* quote4 is what translating an ICMPv4 error reads: the error's own type,
 * code and rest, mapped to ICMPv6 (icmp4_err_read), and the IPv4 packet
 * it quotes (quote4_load). */
struct quote4 {
	__u32 info;
	__u8 type, code;
	__u8 pad[2];
	struct iphdr ip;
	struct l4 l;  /* its upper-layer fields */
	__u32 ihl;    /* its header length */
	__u32 l4_off; /* its upper-layer header, from the frame's start */
	__u32 len;    /* its upper-layer length */
};

/* quote4_load reads the packet an ICMPv4 error quotes at in_off. Only the
 * first fragment (or the whole packet) of TCP, UDP or an ICMP query is
 * translated: an error is never sent about an error (RFC 1122 §3.2.2).
 * Not zero: the error is dropped, and counted. */
static __always_inline int quote4_load(struct __sk_buff *skb, __u32 in_off, struct quote4 *q)
{
	if (bpf_skb_load_bytes(skb, in_off, &q->ip, IP4_HLEN) < 0)
		return drop(C_MALFORMED);
	q->ihl = q->ip.ihl * 4;
	if (q->ip.version != 4 || q->ihl < IP4_HLEN)
		return drop(C_MALFORMED);
	if (q->ip.frag_off & bpf_htons(0x1fff))
		return drop(C_UNSUPPORTED);
	__u8 proto = q->ip.protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP)
		return drop(C_UNSUPPORTED);
	q->l4_off = in_off + q->ihl;
	if (load_l4(skb, q->l4_off, proto, &q->l) < 0)
		return drop(C_MALFORMED);
	if (proto == IPPROTO_ICMP && q->l.type != 8 && q->l.type != 0)
		return drop(C_UNSUPPORTED);
	q->len = bpf_ntohs(q->ip.tot_len);
	if (q->len < q->ihl)
		return drop(C_MALFORMED);
	q->len -= q->ihl;
	return 0;
}

/* ip6_of_quote4 is the IPv6 header that takes the place of the quoted
 * packet's. */
static __always_inline struct ipv6hdr ip6_of_quote4(const struct quote4 *q, const struct in6_addr *src,
						    const struct in6_addr *dst)
{
	__u8 nh = q->ip.protocol == IPPROTO_ICMP ? IPPROTO_ICMPV6_ : q->ip.protocol;
	return ip6_of4(&q->ip, q->len, nh, src, dst);
}

/* quote6 is what translating an ICMPv6 error reads: the error's own type,
 * code and rest, mapped to ICMPv4 (icmp6_err_read), and the IPv6 packet
 * it quotes (quote6_load). */
struct quote6 {
	__u32 info;
	__u8 type, code;
	__u8 pad0[2];
	struct ipv6hdr ip6;
	struct l4 l;     /* its upper-layer fields */
	__u32 l4_off;    /* its upper-layer header, from the frame's start */
	__u32 len;       /* its upper-layer length */
	__u32 ext;       /* its fragment header's length: 8 or 0 */
	__be16 id;       /* with a fragment header: the IPv4 identification */
	__be16 frag_off; /* and flags it becomes (RFC 7915 §5.1.1) */
	__u8 nh;         /* its upper-layer protocol */
	__u8 pad[3];
};

/* quote6_load reads the packet an ICMPv6 error quotes at in_off. Only the
 * first fragment (or the whole packet) of TCP, UDP or an ICMPv6 query is
 * translated: an error is never sent about an error (RFC 4443 §2.4 e).
 * Not zero: the error is dropped, and counted. */
static __always_inline int quote6_load(struct __sk_buff *skb, __u32 in_off, struct quote6 *q)
{
	if (bpf_skb_load_bytes(skb, in_off, &q->ip6, IP6_HLEN) < 0)
		return drop(C_MALFORMED);
	q->nh = q->ip6.nexthdr;
	if (q->nh == NEXTHDR_FRAGMENT) {
		__u8 fh[8];
		if (bpf_skb_load_bytes(skb, in_off + IP6_HLEN, fh, 8) < 0)
			return drop(C_MALFORMED);
		__u16 fo = ((__u16)fh[2] << 8) | fh[3];
		if (fo & 0xfff8)
			return drop(C_UNSUPPORTED);
		q->nh = fh[0];
		q->frag_off = bpf_htons((fo & 1) ? 0x2000 : 0);
		__builtin_memcpy(&q->id, fh + 6, 2);
		q->ext = 8;
	}
	if (q->nh != IPPROTO_TCP && q->nh != IPPROTO_UDP && q->nh != IPPROTO_ICMPV6_)
		return drop(C_UNSUPPORTED);
	q->l4_off = in_off + IP6_HLEN + q->ext;
	if (load_l4(skb, q->l4_off, q->nh, &q->l) < 0)
		return drop(C_MALFORMED);
	if (q->nh == IPPROTO_ICMPV6_ && q->l.type != 128 && q->l.type != 129)
		return drop(C_UNSUPPORTED);
	q->len = bpf_ntohs(q->ip6.payload_len);
	if (q->len < q->ext)
		return drop(C_MALFORMED);
	q->len -= q->ext;
	return 0;
}

/* ip4_of_quote6 is the IPv4 header, checksum included, that takes the
 * place of the quoted packet's: a fragment header's identification and
 * flags, or without one the Don't Fragment rule for the packet itself
 * (RFC 7915 §5.1: set above 1260 bytes). */
static __always_inline struct iphdr ip4_of_quote6(const struct quote6 *q, __be32 src, __be32 dst)
{
	__u8 proto = q->nh == IPPROTO_ICMPV6_ ? IPPROTO_ICMP : q->nh;
	struct iphdr h = ip4_of6(&q->ip6, q->len + IP4_HLEN, proto, src, dst);
	if (q->ext) {
		h.id = q->id;
		h.frag_off = q->frag_off;
	} else if (q->len + IP4_HLEN > 1260) {
		h.frag_off = bpf_htons(0x4000);
	}
	ip4_csum(&h);
	return h;
}

/* icmp4_err_read maps the type, code and rest of the ICMPv4 error ip,
 * as load_l4 read them into o, to ICMPv6 (RFC 7915 §4.2) and reads the
 * packet it quotes, all into q. Not zero: the error is dropped, and
 * counted. */
static __always_inline int icmp4_err_read(struct __sk_buff *skb, const struct config *cfg, const struct iphdr *ip,
					  const struct l4 *o, struct quote4 *q)
{
	q->type = o->type;
	q->code = o->code;
	q->info = o->info;
	if (icmp_err_46(&q->type, &q->code, &q->info, cfg) < 0)
		return drop(C_UNSUPPORTED);
	return quote4_load(skb, ETH_HLEN + (ip->ihl & 0xf) * 4 + 8, q);
}

/* icmp6_err_read maps the type, code and rest of an ICMPv6 error, as
 * load_l4 read them into o, to ICMPv4 (RFC 7915 §5.2; mtu4 is the MTU of
 * the IPv4 side it goes out on) and reads the packet it quotes, all into
 * q. An error that came in fragments is not reassembled, so not
 * translated. Not zero: the error is dropped, and counted. */
static __always_inline int icmp6_err_read(struct __sk_buff *skb, const struct ext6 *e, const struct l4 *o,
					  __u32 mtu4, struct quote6 *q)
{
	if (e->frag && (e->fo || e->mf))
		return drop(C_UNSUPPORTED);
	q->type = o->type;
	q->code = o->code;
	q->info = o->info;
	if (icmp_err_64(&q->type, &q->code, &q->info, mtu4) < 0)
		return drop(C_UNSUPPORTED);
	return quote6_load(skb, ETH_HLEN + e->off + 8, q);
}

/* icmp_err_head fills icmp with the ICMP or ICMPv6 header of an error:
 * type, code, a zero checksum and the 32-bit rest (MTU or pointer). */
static __always_inline void icmp_err_head(__u8 icmp[8], __u8 type, __u8 code, __u32 info)
{
	__be32 inf = bpf_htonl(info);
	icmp[0] = type;
	icmp[1] = code;
	icmp[2] = 0;
	icmp[3] = 0;
	__builtin_memcpy(icmp + 4, &inf, 4);
}

/* icmp6_err_put turns [v4 hlen][icmp 8][inner v4 ihl][rest] into
 * [outer][icmp6][inner][rest], cut to plen bytes after outer, with the
 * ICMPv6 header of an error of type and code (its checksum is
 * icmp6_err_csum's). Not zero: the packet could not be reshaped and is
 * dropped. */
static __always_inline int icmp6_err_put(struct __sk_buff *skb, __u32 hlen, __u32 ihl, __u32 plen,
					 const struct ipv6hdr *outer, __u8 type, __u8 code, __u32 info,
					 const struct ipv6hdr *inner)
{
	__u8 icmp6[8];
	icmp_err_head(icmp6, type, code, info);
	if (hlen > IP4_HLEN && bpf_skb_adjust_room(skb, -(__s32)(hlen - IP4_HLEN), BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_adjust_room(skb, (__s32)IP6_HLEN - (__s32)ihl, BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_tail(skb, ETH_HLEN + IP6_HLEN + plen, 0) < 0)
		return drop(C_MALFORMED);
	if (STORE(skb, ETH_HLEN, outer, IP6_HLEN) < 0 || STORE(skb, ETH_HLEN + IP6_HLEN, icmp6, 8) < 0 ||
	    STORE(skb, ETH_HLEN + IP6_HLEN + 8, inner, IP6_HLEN) < 0)
		return drop(C_MALFORMED);
	return 0;
}

/* icmp6_err_csum fills in the checksum of the ICMPv6 error of plen bytes
 * from src to dst that icmp6_err_put wrote. Kept apart from it: inlined
 * there, it costs the NAT64's ICMPv4 error translator more stack than
 * the 512 bytes its call chain may have. Not zero: it is dropped. */
static __always_inline int icmp6_err_csum(struct __sk_buff *skb, const struct in6_addr *src,
					  const struct in6_addr *dst, __u32 plen)
{
	__u32 sum = pseudo6_sum(src, dst, plen, IPPROTO_ICMPV6_);
	if (csum_skb(skb, ETH_HLEN + IP6_HLEN, plen, &sum) < 0)
		return drop(C_MALFORMED);
	__u16 c = csum_fold(sum);
	if (STORE(skb, ETH_HLEN + IP6_HLEN + 2, &c, 2) < 0)
		return drop(C_MALFORMED);
	return 0;
}

/* icmp4_err_put turns [v6 40][ext][icmp6 8][inner v6 40][iext][rest] into
 * [outer][icmp][inner][rest], cut to tot bytes, with the ICMPv4 header of
 * an error of type and code and its checksum. Not zero: the packet could
 * not be reshaped and is dropped. */
static __always_inline int icmp4_err_put(struct __sk_buff *skb, __u32 ext, __u32 iext, __u32 tot,
					 const struct iphdr *outer, __u8 type, __u8 code, __u32 info,
					 const struct iphdr *inner)
{
	__u8 icmp[8];
	icmp_err_head(icmp, type, code, info);
	/* bpf_skb_change_proto takes the other 20 bytes of the IPv6 header. */
	if (bpf_skb_adjust_room(skb, -(__s32)(ext + IP4_HLEN + iext), BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_tail(skb, ETH_HLEN + tot, 0) < 0)
		return drop(C_MALFORMED);
	if (STORE(skb, ETH_HLEN, outer, IP4_HLEN) < 0 || STORE(skb, ETH_HLEN + IP4_HLEN, icmp, 8) < 0 ||
	    STORE(skb, ETH_HLEN + IP4_HLEN + 8, inner, IP4_HLEN) < 0)
		return drop(C_MALFORMED);
	__u32 sum = 0;
	if (csum_skb(skb, ETH_HLEN + IP4_HLEN, tot - IP4_HLEN, &sum) < 0)
		return drop(C_MALFORMED);
	__u16 c = csum_fold(sum);
	if (STORE(skb, ETH_HLEN + IP4_HLEN + 2, &c, 2) < 0)
		return drop(C_MALFORMED);
	return 0;
}

#endif
