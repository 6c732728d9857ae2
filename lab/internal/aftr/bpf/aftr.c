// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lab's AFTR (RFC 6333 §6), the ISP's end of a DS-Lite softwire, for
 * one B4: the lab's kernel has no ip6_tunnel.
 *   aftr_in  on gz-isp's WAN ingress: IPv4-in-IPv6 to the AFTR address ->
 *            the IPv4 packet, for the stack to forward (and nftables to
 *            masquerade towards gz-inet); the outer source is the B4,
 *            remembered for the way back
 *   aftr_out on the same interface's egress: IPv4 to the softwire's
 *            192.0.0.0/29 -> IPv4-in-IPv6 from the AFTR to the B4
 * A real AFTR keeps a softwire per B4 and NATs by softwire (RFC 6333 §6.6);
 * the lab has one gizmo, so one B4 and the kernel's NAT suffice.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../../../../internal/bpfhdr/config.h"
#include "../../../../internal/bpfhdr/fib6.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#define ETH_HLEN 14
#define IP6_HLEN 40

/* Linux 6.3's bpf_skb_adjust_room flag (UAPI 1 << 7), which Debian's
 * headers may lack: the shrunk packet is IPv4. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif

struct config {
	__u8 aftr[16] __attribute__((aligned(4))); /* the AFTR's IPv6 address */
	__be32 net4;  /* the softwire's IPv4 network (192.0.0.0) ... */
	__be32 mask4; /* ... and its mask (/29) */
	__u32 ifindex;
	__u32 pad;
};

/* softwire: the B4 the AFTR last heard from. */
struct softwire {
	__u8 b4[16] __attribute__((aligned(4)));
	__u64 decapsulated, encapsulated, no_b4;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} aftr_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct softwire);
} aftr_softwire SEC(".maps");

static __always_inline int same6(const void *a, const void *b)
{
	const __u32 *x = a, *y = b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* softwire_of finds the configuration and the softwire's state for a
 * packet with EtherType proto and loads its IP header (hlen bytes) into
 * hdr: 0 when the packet is one for the softwire to look at. */
static __always_inline int softwire_of(struct __sk_buff *skb, __u16 proto, void *hdr, __u32 hlen,
				       struct config **cfg, struct softwire **sw)
{
	*cfg = config_for(skb, proto, &aftr_config);
	if (!*cfg)
		return -1;
	*sw = config_of(&aftr_softwire);
	if (!*sw)
		return -1;
	return bpf_skb_load_bytes(skb, ETH_HLEN, hdr, hlen) < 0 ? -1 : 0;
}

SEC("tc")
int aftr_in(struct __sk_buff *skb)
{
	struct ipv6hdr o;
	struct config *cfg;
	struct softwire *sw;
	if (softwire_of(skb, ETH_P_IPV6, &o, sizeof(o), &cfg, &sw) < 0 || o.nexthdr != IPPROTO_IPIP ||
	    !same6(&o.daddr, cfg->aftr))
		return TC_ACT_UNSPEC;
	__u8 v;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + IP6_HLEN, &v, 1) < 0 || v >> 4 != 4)
		return TC_ACT_SHOT;
	if (bpf_skb_adjust_room(skb, -IP6_HLEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return TC_ACT_SHOT;
	__be16 proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_store_bytes(skb, 12, &proto, 2, 0) < 0)
		return TC_ACT_SHOT;
	__builtin_memcpy(sw->b4, &o.saddr, 16);
	__sync_fetch_and_add(&sw->decapsulated, 1);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int aftr_out(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct config *cfg;
	struct softwire *sw;
	if (softwire_of(skb, ETH_P_IP, &ip, sizeof(ip), &cfg, &sw) < 0 || (ip.daddr & cfg->mask4) != cfg->net4)
		return TC_ACT_UNSPEC;
	const __u32 *b4 = (const __u32 *)sw->b4;
	if (!(b4[0] | b4[1] | b4[2] | b4[3])) {
		__sync_fetch_and_add(&sw->no_b4, 1);
		return TC_ACT_SHOT;
	}
	__u32 len = skb->len - ETH_HLEN;
	if (bpf_skb_adjust_room(skb, IP6_HLEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return TC_ACT_SHOT;
	struct ipv6hdr o = {};
	o.version = 6;
	o.payload_len = bpf_htons((__u16)len);
	o.nexthdr = IPPROTO_IPIP;
	o.hop_limit = 64;
	__builtin_memcpy(&o.saddr, cfg->aftr, 16);
	__builtin_memcpy(&o.daddr, sw->b4, 16);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &o, sizeof(o), 0) < 0)
		return TC_ACT_SHOT;
	__sync_fetch_and_add(&sw->encapsulated, 1);

	struct bpf_fib_lookup fib = {};
	fib.ifindex = cfg->ifindex;
	__builtin_memcpy(fib.ipv6_src, cfg->aftr, 16);
	__builtin_memcpy(fib.ipv6_dst, sw->b4, 16);
	long rc = fib6_eth(skb, &fib);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return TC_ACT_UNSPEC;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return fib6_redirect_neigh(&fib);
	return TC_ACT_SHOT;
}
