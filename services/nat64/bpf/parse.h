/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Parsing: IPv6 extension headers, the upper-layer fields, and the RFC 7915 ICMP type maps. Part of nat64.c. */
#ifndef GIZMO_NAT64_PARSE_H
#define GIZMO_NAT64_PARSE_H

/* ipv6 extension headers that RFC 7915 §5.1 lets the translator skip. */
struct ext6 {
	__u32 off;   /* of the upper-layer header, from the start of L3 */
	__u8 nh;     /* upper-layer protocol */
	__u8 frag;   /* a fragment header is present */
	__u8 mf;
	__u8 via96;  /* the destination matched lan_pref96, not the PREF64 */
	__u16 fo;    /* fragment offset in bytes */
	__u16 pad1;
	__be32 id;
};

static __noinline int walk_ext6(struct __sk_buff *skb, __u8 nh, struct ext6 *e)
{
	if (!e)
		return -1;
	__u32 off = IP6_HLEN;
	e->frag = 0;
	for (int i = 0; i < 4; i++) {
		__u8 h[8];
		if (nh == NEXTHDR_HOP || nh == NEXTHDR_DEST || nh == NEXTHDR_ROUTING) {
			if (bpf_skb_load_bytes(skb, ETH_HLEN + off, h, 4) < 0)
				return -1;
			/* A routing header with segments left is not ours to
			 * skip (RFC 7915 §5.1). */
			if (nh == NEXTHDR_ROUTING && h[3] != 0)
				return -2;
			nh = h[0];
			off += ((__u32)h[1] + 1) * 8;
			continue;
		}
		if (nh == NEXTHDR_FRAGMENT) {
			if (bpf_skb_load_bytes(skb, ETH_HLEN + off, h, 8) < 0)
				return -1;
			nh = h[0];
			__u16 fo = ((__u16)h[2] << 8) | h[3];
			e->frag = 1;
			e->fo = fo & 0xfff8;
			e->mf = fo & 1;
			__builtin_memcpy(&e->id, h + 4, 4);
			off += 8;
			if (nh == NEXTHDR_HOP || nh == NEXTHDR_DEST || nh == NEXTHDR_ROUTING ||
			    nh == NEXTHDR_FRAGMENT)
				return -2;
			break;
		}
		break;
	}
	if (nh == NEXTHDR_HOP || nh == NEXTHDR_DEST || nh == NEXTHDR_ROUTING || nh == NEXTHDR_FRAGMENT)
		return -2;
	if (off > 512)
		return -2;
	e->off = off;
	e->nh = nh;
	return 0;
}

/* ip4_lengths checks ip's header and total lengths against the frame
 * and cuts off the padding Ethernet adds to short frames (it must not
 * become payload). Not zero: the packet is dropped, and counted. */
static __always_inline int ip4_lengths(struct __sk_buff *skb, const struct iphdr *ip, __u32 *hlen, __u32 *tot)
{
	*hlen = ip->ihl & 0xf;
	if (*hlen < 5)
		return drop(C_MALFORMED);
	*hlen *= 4;
	*tot = bpf_ntohs(ip->tot_len);
	if (*tot < *hlen || *tot > skb->len - ETH_HLEN)
		return drop(C_MALFORMED);
	if (*tot < skb->len - ETH_HLEN && !skb->gso_size && bpf_skb_change_tail(skb, ETH_HLEN + *tot, 0) < 0)
		return drop(C_MALFORMED);
	return 0;
}

/* ip6_walk checks ip6's payload length against the frame, cuts off the
 * padding Ethernet adds to short frames (it must not become payload) and
 * finds the upper layer behind the extension headers (into *ep, which
 * the caller zeroed; most packets have none, and need no walk). plen and
 * ext are the payload's and the extension headers' lengths. Not zero:
 * the packet is dropped, and counted. */
static __always_inline int ip6_walk(struct __sk_buff *skb, const struct ipv6hdr *ip6, struct ext6 *ep, __u32 *plen,
				    __u32 *ext)
{
	*plen = bpf_ntohs(ip6->payload_len);
	if (*plen == 0 || IP6_HLEN + *plen > skb->len - ETH_HLEN)
		return drop(C_MALFORMED);
	if (IP6_HLEN + *plen < skb->len - ETH_HLEN && !skb->gso_size &&
	    bpf_skb_change_tail(skb, ETH_HLEN + IP6_HLEN + *plen, 0) < 0)
		return drop(C_MALFORMED);
	int r = 0;
	__u8 nh0 = ip6->nexthdr;
	if (nh0 == IPPROTO_TCP || nh0 == IPPROTO_UDP || nh0 == IPPROTO_ICMPV6_) {
		ep->off = IP6_HLEN;
		ep->nh = nh0;
	} else {
		r = walk_ext6(skb, nh0, ep);
	}
	if (r == -1)
		return drop(C_MALFORMED);
	if (r < 0)
		return drop(C_UNSUPPORTED);
	*ext = ep->off - IP6_HLEN;
	if (*ext > *plen)
		return drop(C_MALFORMED);
	/* GSO segments by the offsets of a plain header. */
	if (*ext && skb->gso_size)
		return drop(C_UNSUPPORTED);
	return 0;
}

/* The IPv4 options of a header, as ip4_opts_source_routed sees them: 40
 * bytes at most (RFC 791), with room for the masked indexes below. */
struct ip4_opts {
	__u8 b[68];
};
_Static_assert(sizeof(((struct scratch *)0)->buf) >= sizeof(struct ip4_opts),
	       "the options are read from the scratch buffer");

/* ip4_opts_source_routed reports an unexpired loose or strict source route
 * option (RFC 791: type 131 or 137, pointer within the option) among the n
 * option bytes in o. It is a global function, verified once on its own: it
 * takes no context pointer, only plain memory, so the verifier needs no
 * kernel BTF for its arguments (the target kernels have none), and its
 * 20-step walk is not explored again for every state of its caller. */
__noinline int ip4_opts_source_routed(const struct ip4_opts *o, __u32 n)
{
	if (!o)
		return 1;
	if (n == 0 || n > 40)
		return 0;
	const __u8 *opt = o->b;
	__u32 i = 0;
	for (int k = 0; k < 20; k++) {
		if (i >= n || i >= 39)
			break;
		/* Keep the index bounded in the register used (clang would
		 * drop a plain mask it can prove redundant). */
		__u64 x = i;
		asm volatile("%0 &= 0x3f" : "+r"(x));
		__u8 type = opt[x];
		if (type == 0) /* end of options */
			break;
		/* One path per iteration, so that the verifier's work stays
		 * linear: a no-op is an option of length one. */
		__u32 len = type == 1 ? 1 : opt[x + 1];
		if (len == 0 || (type != 1 && len < 2))
			return 1; /* malformed: treat as not translatable */
		if ((type == 131 || type == 137) && len >= 3 && opt[x + 2] <= len)
			return 1;
		i += len;
	}
	return 0;
}

/* ip4_source_routed loads the options of the IPv4 header (hlen bytes) to
 * the per-CPU scratch buffer and looks for a source route in them.
 * Indexing a map value with a bounded variable is fine for the verifier,
 * the stack is not. */
static __always_inline int ip4_source_routed(struct __sk_buff *skb, __u32 hlen)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&nat64_scratch, &zero);
	if (!sc)
		return 1;
	__u32 n = hlen - IP4_HLEN;
	if (n == 0 || n > 40)
		return 0;
	/* 1 <= m <= 64 in the register the helper gets (see csum_skb). */
	__u64 m = n - 1;
	asm volatile("%0 &= 0x3f" : "+r"(m));
	m += 1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + IP4_HLEN, sc->buf, m) < 0)
		return 1;
	return ip4_opts_source_routed((const struct ip4_opts *)sc->buf, n);
}

static __always_inline __u8 tclass(const struct ipv6hdr *ip)
{
	return (ip->priority << 4) | (ip->flow_lbl[0] >> 4);
}

/* ICMPv6 -> ICMPv4 type and code, RFC 7915 §5.2. Returns -1 for messages
 * that are dropped. info is the 4-byte rest of header in host order; mtu4
 * the MTU of the IPv4 side the error goes to. */
static __always_inline int icmp_err_64(__u8 *type, __u8 *code, __u32 *info, __u32 mtu4)
{
	switch (*type) {
	case 1: /* destination unreachable */
		switch (*code) {
		case 0: case 2: case 3: *code = 1; break; /* host unreachable */
		case 1: *code = 10; break;                 /* admin prohibited */
		case 4: *code = 3; break;                  /* port unreachable */
		default: return -1;
		}
		*type = 3;
		*info = 0;
		return 0;
	case 2: { /* packet too big */
		__u32 mtu = *info;
		if (mtu < 20 + 68)
			return -1;
		mtu -= 20;
		if (mtu > mtu4)
			mtu = mtu4;
		*type = 3;
		*code = 4;
		*info = mtu & 0xffff;
		return 0;
	}
	case 3: /* time exceeded */
		*type = 11;
		*info = 0;
		return 0;
	case 4: /* parameter problem */
		if (*code == 1) {
			*type = 3;
			*code = 2;
			*info = 0;
			return 0;
		}
		if (*code != 0)
			return -1;
		{
			/* RFC 7915 §5.2 figure 6 */
			static const __s8 ptr[64] = {
				0, 1, -1, -1, 2, 2, 9, 8,
				12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
				16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
			};
			__u32 p = *info;
			if (p >= 40 || ptr[p & 63] < 0)
				return -1;
			*type = 12;
			*code = 0;
			*info = (__u32)ptr[p & 63] << 24;
			return 0;
		}
	}
	return -1;
}

/* ICMPv4 -> ICMPv6, RFC 7915 §4.2. */
static __always_inline int icmp_err_46(__u8 *type, __u8 *code, __u32 *info, const struct config *cfg)
{
	switch (*type) {
	case 3:
		switch (*code) {
		case 0: case 1: case 5: case 6: case 7: case 8: case 11: case 12:
			*type = 1; *code = 0; *info = 0;
			return 0;
		case 2:
			*type = 4; *code = 1; *info = 6;
			return 0;
		case 3:
			*type = 1; *code = 4; *info = 0;
			return 0;
		case 4: {
			__u32 mtu = *info & 0xffff;
			mtu += 20;
			if (mtu > cfg->lan_mtu)
				mtu = cfg->lan_mtu;
			if (mtu < IPV6_MIN_MTU)
				mtu = IPV6_MIN_MTU;
			*type = 2; *code = 0; *info = mtu;
			return 0;
		}
		case 9: case 10: case 13: case 15:
			*type = 1; *code = 1; *info = 0;
			return 0;
		}
		return -1;
	case 11:
		*type = 3; *info = 0;
		return 0;
	case 12:
		if (*code != 0 && *code != 2)
			return -1;
		{
			/* RFC 7915 §4.2 figure 3 */
			static const __s8 ptr[32] = {0, 1, 4, 4, -1, -1, -1, -1, 7, 6, -1, -1,
						     8, 8, 8, 8, 24, 24, 24, 24};
			__u32 p = *info >> 24;
			if (p >= 20 || ptr[p & 31] < 0)
				return -1;
			*type = 4; *code = 0; *info = ptr[p & 31];
			return 0;
		}
	}
	return -1;
}

/* l4 describes the upper-layer header fields the translator rewrites. */
struct l4 {
	__be16 sport, dport; /* ICMP queries: identifier in both */
	__u16 csum_off;      /* from the start of the L4 header; 0 = none */
	__u8 flags;          /* TCP flags */
	__u8 type, code;     /* ICMP */
	__u8 pad[3];
	__u32 info;          /* ICMP rest of header, host order */
};

static __always_inline int load_l4(struct __sk_buff *skb, __u32 off, __u8 proto, struct l4 *l)
{
	__u8 h[16];
	if (proto == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, off, h, 14) < 0)
			return -1;
		l->flags = h[13];
		l->csum_off = 16;
	} else if (proto == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, off, h, 8) < 0)
			return -1;
		l->csum_off = 6;
	} else {
		if (bpf_skb_load_bytes(skb, off, h, 8) < 0)
			return -1;
		l->type = h[0];
		l->code = h[1];
		__be32 inf;
		__builtin_memcpy(&inf, h + 4, 4);
		l->info = bpf_ntohl(inf);
		l->csum_off = 2;
		__builtin_memcpy(&l->sport, h + 4, 2);
		__builtin_memcpy(&l->dport, h + 4, 2);
		return 0;
	}
	__builtin_memcpy(&l->sport, h, 2);
	__builtin_memcpy(&l->dport, h + 2, 2);
	return 0;
}

#endif
