/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TCP MSS clamping on translated SYNs. Part of nat64.c.
 *
 * Translation changes the header size by 20 bytes, and the MSS option a
 * host puts in its SYN tells the peer how big to make the segments it
 * sends back (RFC 9293 §3.7.1). Two cases overrun a link:
 *
 * - 4->6 data, sized by the MSS of the IPv6 side's SYN (translated 6->4).
 *   A native IPv6 host advertises its MTU minus 60 and is right; but an
 *   IPv4 stack behind a CLAT (464XLAT, RFC 6877) advertises its MTU minus
 *   40, so the IPv4 peer's full-sized segments are 20 bytes too big for the
 *   LAN once translated. The program answers single packets with
 *   Fragmentation Needed, but GSO packets (GRO on the WAN, or TSO from a
 *   local sender) skip that check, and since Linux 5.13 (commit 364745fbe981
 *   "bpf: Do not change gso_size during bpf_skb_change_proto()")
 *   bpf_skb_change_proto no longer lowers gso_size by 20: the kernel would
 *   cut the aggregate into segments 20 bytes over the LAN MTU. Clamp: the
 *   MSS of a SYN translated 6->4 is at most LAN MTU - 60 (IPv6 40 + TCP 20).
 * - 6->4 data, sized by the MSS of the IPv4 side's SYN (translated 4->6).
 *   IPv6 segments shrink by 20 in translation, so translation alone never
 *   overruns; but a WAN narrower than the IPv4 peer's link (PPPoE, the
 *   lab's 1400) is overrun by GSO packets the same way, as nothing on the
 *   redirect path checks their size. Clamp: the MSS of a SYN translated
 *   4->6 is at most WAN MTU - 40 (IPv4 20 + TCP 20), what a router's
 *   "clamp MSS to path MTU" does; these packets never pass netfilter.
 *
 * Only SYNs carry the option (RFC 9293 §3.2). Other options and the MSS of
 * smaller values are left alone; the checksum is updated incrementally.
 */
#ifndef GIZMO_NAT64_MSS_H
#define GIZMO_NAT64_MSS_H

#include "../../../internal/bpfhdr/tcp_opts.h"

_Static_assert(sizeof(((struct scratch *)0)->buf) >= sizeof(struct tcp_opts),
	       "the options are read from the scratch buffer");

static __always_inline __u16 swab16(__u16 v)
{
	return (__u16)((v >> 8) | (v << 8));
}

/* clamp_mss lowers the MSS option of the TCP SYN at l4_off to limit if it
 * is bigger. Returns 0, or -1 if the packet could not be rewritten. */
static __noinline int clamp_mss(struct __sk_buff *skb, __u32 l4_off, __u32 csum_at, __u32 limit)
{
	__u8 doff;
	if (bpf_skb_load_bytes(skb, l4_off + 12, &doff, 1) < 0)
		return 0;
	__u32 n = (__u32)(doff >> 4) * 4;
	if (n <= 20)
		return 0;
	n -= 20;
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&nat64_scratch, &zero);
	if (!sc)
		return 0;
	/* 1 <= m <= 64 in the register the helper gets (see csum_skb). */
	__u64 m = n - 1;
	asm volatile("%0 &= 0x3f" : "+r"(m));
	m += 1;
	if (bpf_skb_load_bytes(skb, l4_off + 20, sc->buf, m) < 0)
		return 0; /* options cut short: not ours to judge */
	struct tcp_opts *opts = (struct tcp_opts *)sc->buf;
	if (!tcp_opts_mss(opts, n))
		return 0;
	__u32 i = opts->at & 0x3f;
	__u32 at = l4_off + 20 + (__u32)i + 2;
	__u16 old;
	if (bpf_skb_load_bytes(skb, at, &old, 2) < 0)
		return 0;
	if (bpf_ntohs(old) <= limit)
		return 0;
	__u16 new = bpf_htons((__u16)limit);
	/* The checksum sums 16-bit words from the start of the TCP header: a
	 * value at an odd offset (after a no-op) straddles two words, which
	 * adds it byte-swapped (RFC 1071 §2 (B), byte order independence). */
	__u64 from = old, to = new;
	if (i & 1) {
		from = swab16(old);
		to = swab16(new);
	}
	if (bpf_l4_csum_replace(skb, csum_at, from, to, 2) < 0 || STORE(skb, at, &new, 2) < 0)
		return -1;
	count(C_MSS_CLAMPED);
	return 0;
}

/* mss_limit is the largest MSS whose segments fit mtu with hdr bytes of
 * IP and TCP header; 0 when the MTU is not known. */
static __always_inline __u32 mss_limit(__u16 mtu, __u32 hdr)
{
	return mtu > hdr ? mtu - hdr : 0;
}

#endif
