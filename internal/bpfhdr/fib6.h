/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sending an IPv6 packet on to its next hop from tc, as the CLAT, the
 * DS-Lite B4 and the lab's AFTR do: bpf_fib_lookup finds the next hop, and
 * bpf_redirect_neigh resolves it when the neighbour table does not know it
 * yet. Included after <bpf/bpf_helpers.h> and <bpf/bpf_endian.h>.
 */
#ifndef GIZMO_BPFHDR_FIB6_H
#define GIZMO_BPFHDR_FIB6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>

#define AF_INET6 10

/* fib6_eth looks up the route from fib->ipv6_src to fib->ipv6_dst (the
 * caller fills them in, and fib->ifindex, the interface the packet is
 * sent from) and writes the frame's Ethernet header for it: the next
 * hop's MAC address when the neighbour table knows it, the EtherType
 * always. It returns bpf_fib_lookup's answer, BPF_FIB_LKUP_RET_SUCCESS
 * when the frame is ready to leave by fib->ifindex and
 * BPF_FIB_LKUP_RET_NO_NEIGH when fib6_redirect_neigh is to send it, or -1
 * when the header could not be written. */
static __always_inline long fib6_eth(struct __sk_buff *skb, struct bpf_fib_lookup *fib)
{
	__be16 proto = bpf_htons(ETH_P_IPV6);
	fib->family = AF_INET6;
	long rc = bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_OUTPUT);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__u8 eth[ETH_HLEN];
		__builtin_memcpy(eth, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth + ETH_ALEN, fib->smac, ETH_ALEN);
		__builtin_memcpy(eth + 2 * ETH_ALEN, &proto, 2);
		if (bpf_skb_store_bytes(skb, 0, eth, ETH_HLEN, 0) < 0)
			return -1;
	} else if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		if (bpf_skb_store_bytes(skb, 2 * ETH_ALEN, &proto, 2, 0) < 0)
			return -1;
	}
	return rc;
}

/* fib6_redirect_neigh sends the packet to the next hop fib6_eth found,
 * for the neighbour table to resolve. */
static __always_inline long fib6_redirect_neigh(const struct bpf_fib_lookup *fib)
{
	struct bpf_redir_neigh nh = {};
	nh.nh_family = AF_INET6;
	__builtin_memcpy(nh.ipv6_nh, fib->ipv6_dst, 16);
	return bpf_redirect_neigh(fib->ifindex, &nh, sizeof(nh), 0);
}

#endif
