/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksums (RFC 1071): folding, whole-packet sums, pseudo-headers. Part of nat64.c. */
#ifndef GIZMO_NAT64_CSUM_H
#define GIZMO_NAT64_CSUM_H

static __always_inline __u16 csum_fold(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* csum_skb adds len bytes of the packet at off to the partial sum *sum.
 * Odd lengths are padded with a zero byte, as RFC 1071 requires. */
static __noinline int csum_skb(struct __sk_buff *skb, __u32 off, __u32 len, __u32 *sum)
{
	if (!sum)
		return -1;
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&nat64_scratch, &zero);
	if (!sc)
		return -1;
	__u32 s = *sum;

	for (int i = 0; i < CSUM_MAX_CHUNKS; i++) {
		if (len == 0)
			break;
		if (len >= CSUM_CHUNK) {
			if (bpf_skb_load_bytes(skb, off, sc->buf, CSUM_CHUNK) < 0)
				return -1;
			s = bpf_csum_diff(0, 0, (__be32 *)sc->buf, CSUM_CHUNK, s);
			off += CSUM_CHUNK;
			len -= CSUM_CHUNK;
			continue;
		}
		/* 1 <= n < CSUM_CHUNK, with the bound visible to the verifier
		 * in the register the helper gets (clang would reuse len). */
		__u64 n = len - 1;
		asm volatile("%0 &= 0x1ff" : "+r"(n));
		n += 1;
		if (bpf_skb_load_bytes(skb, off, sc->buf, n) < 0)
			return -1;
		/* Zero the pad up to the next multiple of four. */
		__u64 r = (n + 3) & ~3ull;
		sc->buf[n] = 0;
		sc->buf[n + 1] = 0;
		sc->buf[n + 2] = 0;
		if (r > CSUM_CHUNK)
			return -1;
		s = bpf_csum_diff(0, 0, (__be32 *)sc->buf, r, s);
		len = 0;
	}
	if (len != 0)
		return -1;
	*sum = s;
	return 0;
}

struct pseudo6 {
	struct in6_addr src;
	struct in6_addr dst;
	__be32 len;
	__be32 nexthdr;
};

static __noinline __u32 pseudo6_sum(const struct in6_addr *src, const struct in6_addr *dst, __u32 len, __u8 nh)
{
	struct pseudo6 p;
	p.src = *src;
	p.dst = *dst;
	p.len = bpf_htonl(len);
	p.nexthdr = bpf_htonl(nh);
	return bpf_csum_diff(0, 0, (__be32 *)&p, sizeof(p), 0);
}

static __always_inline void ip4_csum(struct iphdr *ip)
{
	ip->check = 0;
	ip->check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)ip, IP4_HLEN, 0));
}

#endif
