/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The headers a translation (RFC 7915) writes in place of the other IP
 * version's, for a packet and for the packet an ICMP error quotes. Part of
 * nat64.c and clat.c; needs maps.h, csum.h and parse.h. */
#ifndef GIZMO_NAT64_HDR_H
#define GIZMO_NAT64_HDR_H

/* set_ethertype writes proto into the Ethernet header. */
static __always_inline int set_ethertype(struct __sk_buff *skb, __u16 proto)
{
	__be16 p = bpf_htons(proto);
	return STORE(skb, 12, &p, 2);
}

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

/* ip4_of6 is the IPv4 header that takes the place of ip6 (RFC 7915 §5.1:
 * the TOS is the traffic class) in a packet of tot bytes. The TTL is the
 * hop limit: a caller that is the router's hop decrements it. The
 * identification, the flags and then the checksum are the caller's. */
static __always_inline struct iphdr ip4_of6(const struct ipv6hdr *ip6, __u32 tot, __u8 proto, __be32 src,
					    __be32 dst)
{
	struct iphdr h = {};
	h.version = 4;
	h.ihl = 5;
	h.tos = tclass(ip6);
	h.tot_len = bpf_htons(tot);
	h.ttl = ip6->hop_limit;
	h.protocol = proto;
	h.saddr = src;
	h.daddr = dst;
	return h;
}

/* ip6_put replaces the IPv4 header, of hlen bytes, by ip6 (RFC 7915 §4.1;
 * options are left behind). The Ethernet header is the caller's. Not
 * zero: the packet is dropped, and counted. */
static __always_inline int ip6_put(struct __sk_buff *skb, __u32 hlen, const struct ipv6hdr *ip6)
{
	if (hlen > IP4_HLEN && bpf_skb_adjust_room(skb, -(__s32)(hlen - IP4_HLEN), BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0) < 0)
		return drop(C_MALFORMED);
	if (STORE(skb, ETH_HLEN, ip6, IP6_HLEN) < 0)
		return drop(C_MALFORMED);
	return 0;
}

/* frag6_put adds the IPv6 fragment header in which an IPv4 fragment keeps
 * its identity (RFC 7915 §4.1) after the IPv6 header: nh is the upper
 * layer's protocol, off_m the offset in bytes with the M flag in bit 0.
 * Not zero: the packet is dropped, and counted. */
static __always_inline int frag6_put(struct __sk_buff *skb, __u8 nh, __u16 off_m, __be16 id4)
{
	if (bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	__u16 id = bpf_ntohs(id4);
	__u8 fh[8] = {nh, 0, off_m >> 8, off_m & 0xff, 0, 0, id >> 8, id & 0xff};
	if (STORE(skb, ETH_HLEN + IP6_HLEN, fh, 8) < 0)
		return drop(C_MALFORMED);
	return 0;
}

/* udp6_csum_fill computes the checksum of a UDP datagram of l4len bytes
 * after ip6 that came from IPv4 without one, which IPv6 does not allow
 * (RFC 7915 §4.5). Not zero: the packet is dropped, and counted. */
static __always_inline int udp6_csum_fill(struct __sk_buff *skb, const struct ipv6hdr *ip6, __u32 l4len)
{
	__u32 sum = pseudo6_sum(&ip6->saddr, &ip6->daddr, l4len, IPPROTO_UDP);
	if (csum_skb(skb, ETH_HLEN + IP6_HLEN, l4len, &sum) < 0)
		return drop(C_UNSUPPORTED);
	__u16 c = csum_fold(sum);
	if (c == 0)
		c = 0xffff;
	if (STORE(skb, ETH_HLEN + IP6_HLEN + 6, &c, 2) < 0)
		return drop(C_MALFORMED);
	return 0;
}

#endif
