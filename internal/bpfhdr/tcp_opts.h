/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The MSS option walk the MSS clamps share (services/nat64, services/clat,
 * services/dslite): each reads a TCP SYN's options into per-CPU map memory
 * and asks tcp_opts_mss where the MSS option is. Included after
 * <bpf/bpf_helpers.h>.
 */
#ifndef GIZMO_BPFHDR_TCP_OPTS_H
#define GIZMO_BPFHDR_TCP_OPTS_H

#include <linux/types.h>

/* The options of a TCP header: 40 bytes at most (RFC 9293 §3.1), with room
 * for the masked indexes below. */
struct tcp_opts {
	__u8 b[68];
	__u32 at; /* tcp_opts_mss's answer */
};

/* tcp_opts_mss looks for the first MSS option (kind 2, length 4) among the
 * n option bytes in o. It returns 1 and leaves its offset in o->at, or 0
 * when there is none or the options are malformed before it. Global, and
 * so verified once on its own rather than at every call. */
__noinline int tcp_opts_mss(struct tcp_opts *o, __u32 n)
{
	if (!o)
		return 0;
	if (n == 0 || n > 40)
		return 0;
	/* The cursor lives in the map value, not a register: read back, it
	 * is a new unknown to the verifier, so the states of an iteration
	 * do not depend on the path through the earlier ones and the walk
	 * costs it a linear number of steps. */
	volatile __u32 *cur = &o->at;
	*cur = 0;
	for (int k = 0; k < 40; k++) {
		__u32 i = *cur;
		if (i >= n || i >= 39)
			return 0;
		__u64 x = i;
		asm volatile("%0 &= 0x3f" : "+r"(x));
		__u8 kind = o->b[x];
		if (kind == 0) /* end of option list */
			return 0;
		__u32 len = kind == 1 ? 1 : o->b[x + 1]; /* no-op: length one */
		if (kind == 2)
			return len == 4 && i + 4 <= n;
		if (len == 0 || (kind != 1 && len < 2))
			return 0;
		*cur = i + len;
	}
	return 0;
}

#endif
