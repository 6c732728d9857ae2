// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The B4 of a DS-Lite softwire (RFC 6333 §5), as two tc programs attached
 * with tcx to the WAN interface:
 *   dslite_out on uplink0 egress:  every IPv4 packet -> IPv4-in-IPv6 to the AFTR
 *   dslite_in  on uplink0 ingress: IPv4-in-IPv6 from the AFTR to the B4 -> IPv4
 *
 * The kernel routes IPv4 out of uplink0 towards a next hop that exists only
 * for it (the AFTR's well-known 192.0.0.1, RFC 6333 §5.7, with a permanent
 * neighbour entry), so whatever leaves as IPv4 (the gizmo's own traffic,
 * the NAT44 of legacy hosts, the NAT64's output that it redirects to
 * uplink0) meets dslite_out, which puts the IPv6 header in front (RFC 2473
 * §3, next header 4) and sends it to the AFTR's next hop. dslite_in runs at
 * the head of the ingress hook, so that the NAT64 program after it and the
 * stack see the IPv4 packet, addressed to the B4's 192.0.0.2.
 *
 * Both programs return TC_ACT_UNSPEC (TCX_NEXT) for what is not theirs and
 * for what they rewrote, so that the other programs on the hook run. Without
 * a configuration (the softwire is off) they pass everything.
 *
 * TCP SYNs in both directions get their MSS clamped to the softwire's MTU
 * less 40, so that no TCP segment needs the softwire to fragment (RFC 6333
 * §5.3); IPv4 packets over the MTU that still reach dslite_out are dropped
 * and counted: the route's MTU (the kernel's Fragmentation Needed) and the
 * NAT64's WAN MTU keep them from coming.
 *
 * UAPI headers only and no global function taking the skb: the target
 * kernels have no BTF.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "dslite.h"
#include "../../../internal/bpfhdr/config.h"
#include "../../../internal/bpfhdr/counters.h"
#include "../../../internal/bpfhdr/fib6.h"
#include "../../../internal/bpfhdr/tcp_opts.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#define ETH_HLEN 14
#define IP4_HLEN 20
#define IP6_HLEN 40
#define NEXTHDR_FRAGMENT 44
#define TCPF_SYN 0x02

/* Linux 6.3's flag for bpf_skb_adjust_room (UAPI enum value 1 << 7): the
 * shrunk packet is IPv4, and skb->protocol says so for the programs after
 * this one and for the stack. Debian's UAPI headers may predate it. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif

/* Writes that fix the checksums they touch themselves. */
#define STORE(skb, off, ptr, len) bpf_skb_store_bytes(skb, off, ptr, len, 0)

CONFIG_MAP(dslite_config, struct config);

COUNTERS_MAP(dslite_counters, C_MAX);

static __always_inline void count_n(__u32 c, __u64 n)
{
	counter_add(&dslite_counters, c, n);
}

/* same6 compares two IPv6 addresses word by word (no memcmp in BPF). */
static __always_inline int same6(const void *a, const void *b)
{
	const __u32 *x = a, *y = b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int drop(__u32 c)
{
	count_n(c, 1);
	return TC_ACT_SHOT;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcp_opts);
} dslite_scratch SEC(".maps");

/* clamp_mss lowers the MSS option of the TCP SYN whose header is at l4 to
 * limit when it is bigger (RFC 9293 §3.7.1: the option tells the peer the
 * largest segment to send). Anything malformed is left to the endpoints.
 * Returns 0, or -1 when the packet could not be rewritten. */
static __always_inline int clamp_mss(struct __sk_buff *skb, __u32 l4, __u16 limit)
{
	__u8 hdr[14];
	if (bpf_skb_load_bytes(skb, l4, hdr, sizeof(hdr)) < 0)
		return 0;
	if (!(hdr[13] & TCPF_SYN))
		return 0;
	__u32 n = (__u32)(hdr[12] >> 4) * 4;
	if (n <= 20 || limit == 0)
		return 0;
	n -= 20;
	__u32 zero = 0;
	struct tcp_opts *o = bpf_map_lookup_elem(&dslite_scratch, &zero);
	if (!o)
		return 0;
	/* 1 <= m <= 64 in the register the helper gets. */
	__u64 m = n - 1;
	asm volatile("%0 &= 0x3f" : "+r"(m));
	m += 1;
	if (bpf_skb_load_bytes(skb, l4 + 20, o->b, m) < 0)
		return 0; /* options cut short: not ours to judge */
	if (!tcp_opts_mss(o, n))
		return 0;
	__u32 i = o->at & 0x3f;
	__u32 at = l4 + 20 + i + 2;
	__u16 old;
	if (bpf_skb_load_bytes(skb, at, &old, 2) < 0)
		return 0;
	if (bpf_ntohs(old) <= limit)
		return 0;
	__u16 new = bpf_htons(limit);
	/* The checksum sums 16-bit words from the start of the TCP header: a
	 * value at an odd offset straddles two words and counts byte-swapped
	 * (RFC 1071 §2 (B)). */
	__u64 from = old, to = new;
	if (i & 1) {
		from = (__u16)((old >> 8) | (old << 8));
		to = (__u16)((new >> 8) | (new << 8));
	}
	if (bpf_l4_csum_replace(skb, l4 + 16, from, to, 2) < 0 || STORE(skb, at, &new, 2) < 0)
		return -1;
	count_n(C_MSS_CLAMPED, 1);
	return 0;
}

/* clamp_ipv4 clamps the MSS of a TCP SYN in the IPv4 packet at off whose
 * header ip was read already; fragments other than the first carry no TCP
 * header. */
static __always_inline int clamp_ipv4(struct __sk_buff *skb, __u32 off, const struct iphdr *ip, __u16 limit)
{
	if (ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(0x1fff)))
		return 0;
	return clamp_mss(skb, off + (__u32)ip->ihl * 4, limit);
}

/* to_aftr writes the Ethernet header towards the AFTR and sends the packet
 * on to the next hop from the FIB: the upstream router, or the AFTR when
 * it is on the link. */
static __always_inline int to_aftr(struct __sk_buff *skb, const struct config *cfg)
{
	__u8 eth[ETH_HLEN];
	__be16 proto = bpf_htons(ETH_P_IPV6);
	if (cfg->flags & F_NO_FIB) {
		if (bpf_skb_load_bytes(skb, 6, eth + 6, 6) < 0)
			return drop(C_ERROR);
		__builtin_memcpy(eth, cfg->next_hop_mac, 6);
		__builtin_memcpy(eth + 12, &proto, 2);
		if (STORE(skb, 0, eth, ETH_HLEN) < 0)
			return drop(C_ERROR);
		return TC_ACT_UNSPEC;
	}
	struct bpf_fib_lookup fib = {};
	fib.ifindex = cfg->wan_ifindex;
	__builtin_memcpy(fib.ipv6_src, cfg->b4, 16);
	__builtin_memcpy(fib.ipv6_dst, cfg->aftr, 16);
	long rc = fib6_eth(skb, &fib);
	if (rc < 0)
		return drop(C_ERROR);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return fib.ifindex == skb->ifindex ? TC_ACT_UNSPEC : bpf_redirect(fib.ifindex, 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return fib6_redirect_neigh(&fib);
	return drop(C_NO_ROUTE);
}

SEC("tc")
int dslite_out(struct __sk_buff *skb)
{
	struct config *cfg = config_for(skb, ETH_P_IP, &dslite_config);
	if (!cfg)
		return TC_ACT_UNSPEC;
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5)
		return drop(C_MALFORMED);
	__u32 len = skb->len - ETH_HLEN;
	/* A GSO packet is cut into segments of the size the kernel chose for
	 * the route's MTU, each of which fits. */
	if ((skb->gso_segs <= 1 && len > cfg->mtu) || len > 0xffff)
		return drop(C_TOO_BIG);
	if (clamp_ipv4(skb, ETH_HLEN, &ip, cfg->mss) < 0)
		return drop(C_ERROR);

	/* RFC 6438: the flow label of a tunnel carries the inner flow's hash,
	 * so that ECMP and LAG on the way keep each flow on one path. */
	__u32 flow = bpf_get_hash_recalc(skb) & 0xfffff;
	if (bpf_skb_adjust_room(skb, IP6_HLEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return drop(C_ERROR);
	/* RFC 2473 §5.1 and RFC 6333 §5.5: the traffic class is the inner
	 * TOS, the hop limit the tunnel's own. */
	struct ipv6hdr o = {};
	o.version = 6;
	o.priority = ip.tos >> 4;
	o.flow_lbl[0] = (__u8)((ip.tos & 0x0f) << 4) | (__u8)(flow >> 16);
	o.flow_lbl[1] = (__u8)(flow >> 8);
	o.flow_lbl[2] = (__u8)flow;
	o.payload_len = bpf_htons((__u16)len);
	o.nexthdr = IPPROTO_IPIP;
	o.hop_limit = cfg->hop_limit;
	__builtin_memcpy(&o.saddr, cfg->b4, 16);
	__builtin_memcpy(&o.daddr, cfg->aftr, 16);
	if (STORE(skb, ETH_HLEN, &o, sizeof(o)) < 0)
		return drop(C_ERROR);
	count_n(C_ENCAP, 1);
	count_n(C_ENCAP_BYTES, len);
	return to_aftr(skb, cfg);
}

SEC("tc")
int dslite_in(struct __sk_buff *skb)
{
	struct config *cfg = config_for(skb, ETH_P_IPV6, &dslite_config);
	if (!cfg)
		return TC_ACT_UNSPEC;
	struct ipv6hdr o;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &o, sizeof(o)) < 0)
		return TC_ACT_UNSPEC;
	if (o.nexthdr != IPPROTO_IPIP && o.nexthdr != NEXTHDR_FRAGMENT)
		return TC_ACT_UNSPEC;
	if (!same6(&o.daddr, cfg->b4))
		return TC_ACT_UNSPEC;
	if (o.nexthdr == NEXTHDR_FRAGMENT) {
		/* An AFTR that fragmented the outer packet (RFC 6333 §6.3):
		 * the kernel has no ip6_tunnel to hand the reassembled packet
		 * to, and the MSS clamp keeps TCP from needing it. */
		__u8 fh[8];
		if (bpf_skb_load_bytes(skb, ETH_HLEN + IP6_HLEN, fh, 8) < 0 || fh[0] != IPPROTO_IPIP)
			return TC_ACT_UNSPEC;
		return drop(C_OUTER_FRAGMENT);
	}
	/* RFC 6333 §5: the softwire runs between the B4 and its AFTR; IPv4
	 * in IPv6 from anyone else would be a way past the AFTR's NAT. */
	if (!same6(&o.saddr, cfg->aftr))
		return drop(C_NOT_FROM_AFTR);
	struct iphdr ip;
	__u32 plen = bpf_ntohs(o.payload_len);
	if (bpf_skb_load_bytes(skb, ETH_HLEN + IP6_HLEN, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5 ||
	    bpf_ntohs(ip.tot_len) < (__u32)ip.ihl * 4 || (plen != 0 && bpf_ntohs(ip.tot_len) > plen))
		return drop(C_MALFORMED);
	if (clamp_ipv4(skb, ETH_HLEN + IP6_HLEN, &ip, cfg->mss) < 0)
		return drop(C_ERROR);
	if (bpf_skb_adjust_room(skb, -IP6_HLEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return drop(C_ERROR);
	__be16 proto = bpf_htons(ETH_P_IP);
	if (STORE(skb, 12, &proto, 2) < 0)
		return drop(C_ERROR);
	count_n(C_DECAP, 1);
	count_n(C_DECAP_BYTES, skb->len - ETH_HLEN);
	return TC_ACT_UNSPEC;
}
