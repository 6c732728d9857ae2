/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 -> IPv6 fragmentation of packets without DF (RFC 7915 §4). Part of
 * nat64.c.
 *
 * RFC 7915 §4: "when the IPv4 sender does not set the DF bit, the
 * translator MUST ensure that the packet does not exceed the path MTU on
 * the IPv6 side", by fragmenting with IPv6 fragment headers. A tc program
 * returns one packet, but it can hand the kernel a copy with
 * bpf_clone_redirect. The packet is split as an IPv4 router would
 * fragment it (RFC 791 §3.2): the tail goes, as an IPv4 fragment of the
 * same datagram, back into the ingress of the interface it came from, and
 * comes through the program again (split further if it is still too big);
 * the head, sized to fit the LAN as IPv6, is translated now. Every piece
 * is then an ordinary IPv4 fragment: the first one carries the upper-layer
 * header and fixes its checksum for the whole datagram, the others find
 * the host through the first one's entry in nat64_frag4 (RFC 6146 §3.4).
 * The entry is written before the tail is handed back, so that a tail
 * processed on another CPU finds it.
 *
 * Not split: GSO packets (never too big, see mss.h), ICMP (the checksum
 * of a fragmented ICMPv6 message cannot be fixed per fragment), headers
 * with options; those are still dropped and counted needs_fragmentation.
 */
#ifndef GIZMO_NAT64_FRAG_H
#define GIZMO_NAT64_FRAG_H

#define FRAG_BUF 16384 /* the head of a split: up to a 9000-byte LAN MTU */

struct fragbuf {
	__u8 b[FRAG_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fragbuf);
} nat64_fragbuf SEC(".maps");

/* frag46_split splits the IPv4 packet in skb (header ip, 20 bytes, no
 * options; l4len bytes of payload) into a head that fits the LAN as IPv6
 * with a fragment header, left in skb, and a tail handed back to the
 * ingress. host6 is the datagram's IPv6 host, for the fragment state.
 * Returns the head's payload length, or -1 if the packet cannot be split
 * (it is then unchanged unless it is dropped anyway). */
static __noinline int frag46_split(struct __sk_buff *skb, const struct config *cfg, struct iphdr *ip,
				   __u32 l4len, const struct in6_addr *host6)
{
	if (!cfg || !ip || !host6)
		return -1;
	__u16 fo = bpf_ntohs(ip->frag_off);
	__u32 foff = (fo & 0x1fff) * 8;
	/* IPv6 header and fragment header; fragment data in units of 8
	 * (RFC 8200 §4.5). */
	__u32 s = ((__u32)cfg->lan_mtu - IP6_HLEN - 8) & ~7u;
	if (cfg->lan_mtu < IP6_HLEN + 16 || s >= l4len || s > FRAG_BUF || foff + l4len > 0xffff)
		return -1;
	__u32 zero = 0;
	struct fragbuf *fb = bpf_map_lookup_elem(&nat64_fragbuf, &zero);
	if (!fb)
		return -1;
	/* 1 <= n <= FRAG_BUF in the register the helper gets (see csum_skb). */
	__u64 n = s - 1;
	asm volatile("%0 &= 0x3fff" : "+r"(n));
	n += 1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + IP4_HLEN, fb->b, n) < 0)
		return -1;

	if (foff == 0) {
		struct frag4_key fk = {.src = ip->saddr, .id = ip->id, .proto = ip->protocol, .pool = pool_of(cfg, ip)};
		struct frag4_val fv = {.first_ns = now_ns(cfg)};
		__builtin_memcpy(fv.addr6, host6, 16);
		bpf_map_update_elem(&nat64_frag4, &fk, &fv, BPF_ANY);
	}

	/* The tail: the head's bytes go (at most 4095 per call). */
	__u32 left = s;
	for (int i = 0; i < 4; i++) {
		if (left == 0)
			break;
		__u32 d = left > 4088 ? 4088 : left;
		if (bpf_skb_adjust_room(skb, -(__s32)d, BPF_ADJ_ROOM_NET, 0) < 0)
			return -2;
		left -= d;
	}
	if (left != 0)
		return -2;
	struct iphdr t = *ip;
	t.tot_len = bpf_htons(IP4_HLEN + l4len - s);
	t.frag_off = bpf_htons(((foff + s) >> 3) | (fo & 0x2000));
	ip4_csum(&t);
	if (STORE(skb, ETH_HLEN, &t, IP4_HLEN) < 0)
		return -2;
	/* Tests run the program without interfaces: the tail stays here. */
	if (!(cfg->flags & F_NO_FIB) && bpf_clone_redirect(skb, skb->ifindex, BPF_F_INGRESS) < 0)
		return -2;

	/* The head: the first s bytes again, more fragments to follow. */
	if (bpf_skb_change_tail(skb, ETH_HLEN + IP4_HLEN + s, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + IP4_HLEN, fb->b, n, 0) < 0)
		return -2;
	ip->tot_len = bpf_htons(IP4_HLEN + s);
	ip->frag_off = bpf_htons((foff >> 3) | 0x2000);
	ip4_csum(ip);
	if (STORE(skb, ETH_HLEN, ip, IP4_HLEN) < 0)
		return -2;
	count(C_FRAGMENTED);
	return (int)s;
}

#endif
