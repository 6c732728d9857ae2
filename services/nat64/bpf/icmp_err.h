/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The ICMP error translation steps (RFC 7915 §4.2, §5.2) that the NAT64
 * and the CLAT share: what differs between them (the addresses, the hop
 * limit, the checks) stays with the caller. Part of nat64.c and clat.c;
 * needs maps.h. */
#ifndef GIZMO_NAT64_ICMP_ERR_H
#define GIZMO_NAT64_ICMP_ERR_H

/* ip6_of4 is the IPv6 header that takes the place of ip4 (RFC 7915 §4.1:
 * the traffic class is the TOS, the flow label zero). The hop limit is
 * the TTL: a caller that is the router's hop decrements it. */
static __always_inline struct ipv6hdr ip6_of4(const struct iphdr *ip4, __u32 plen, __u8 nexthdr,
					      const struct in6_addr *src, const struct in6_addr *dst)
{
	struct ipv6hdr h = {};
	h.version = 6;
	h.priority = ip4->tos >> 4;
	h.flow_lbl[0] = ip4->tos << 4;
	h.payload_len = bpf_htons(plen);
	h.nexthdr = nexthdr;
	h.hop_limit = ip4->ttl;
	h.saddr = *src;
	h.daddr = *dst;
	return h;
}

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
 * ICMPv6 header of an error of type and code (its checksum still to be
 * computed). Not zero: the packet could not be reshaped and is dropped. */
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

/* icmp4_err_put turns [v6 40][ext][icmp6 8][inner v6 40][iext][rest] into
 * [outer][icmp][inner][rest], cut to tot bytes, with the ICMPv4 header of
 * an error of type and code (its checksum still to be computed). Not
 * zero: the packet could not be reshaped and is dropped. */
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
	return 0;
}

/* icmp6_err_csum sets c to the checksum of the ICMPv6 error of plen
 * bytes from src to dst that icmp6_err_put wrote. */
static __always_inline int icmp6_err_csum(struct __sk_buff *skb, const struct in6_addr *src,
					  const struct in6_addr *dst, __u32 plen, __u16 *c)
{
	__u32 sum = pseudo6_sum(src, dst, plen, IPPROTO_ICMPV6_);
	if (csum_skb(skb, ETH_HLEN + IP6_HLEN, plen, &sum) < 0)
		return -1;
	*c = csum_fold(sum);
	return 0;
}

/* icmp4_err_csum sets c to the checksum of the ICMPv4 error of tot bytes
 * that icmp4_err_put wrote. */
static __always_inline int icmp4_err_csum(struct __sk_buff *skb, __u32 tot, __u16 *c)
{
	__u32 sum = 0;
	if (csum_skb(skb, ETH_HLEN + IP4_HLEN, tot - IP4_HLEN, &sum) < 0)
		return -1;
	*c = csum_fold(sum);
	return 0;
}

#endif
