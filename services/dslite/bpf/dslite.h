/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared between dslite.c and the Go loader (bpf2go turns them into
 * Go structs). Every field is laid out without implicit padding so that the
 * Go side and both endiannesses agree.
 */
#ifndef GIZMO_DSLITE_H
#define GIZMO_DSLITE_H

#include <linux/types.h>

/* config.flags */
#define F_NO_FIB 1 /* tests: no bpf_fib_lookup; config.next_hop_mac is the next hop */

/* config is a single value in a BPF_F_NO_PREALLOC hash map: user space
 * replaces it as a whole, readers see either the old or the new value
 * (RCU), never a mix. No entry: the softwire is off and both programs
 * pass everything. */
struct config {
	__u8 b4[16] __attribute__((aligned(4)));   /* the B4's IPv6 address: outer source, and where the AFTR sends */
	__u8 aftr[16] __attribute__((aligned(4))); /* the AFTR's IPv6 address: outer destination */
	__u32 wan_ifindex;
	__u16 mtu; /* the softwire's IPv4 MTU: the WAN's MTU less the outer header */
	__u16 mss; /* the largest TCP MSS through the softwire: mtu - 40 */
	__u8 hop_limit;
	__u8 flags;
	__u8 next_hop_mac[6]; /* F_NO_FIB */
};

/* Counters, one per-CPU slot each; the Go side names them (stats.go). */
enum counter {
	C_ENCAP = 0,      /* IPv4 packets sent into the softwire */
	C_ENCAP_BYTES,    /* their IPv4 bytes */
	C_DECAP,          /* IPv4 packets taken out of the softwire */
	C_DECAP_BYTES,    /* their IPv4 bytes */
	C_MSS_CLAMPED,    /* TCP SYNs whose MSS was lowered to config.mss */
	C_TOO_BIG,        /* IPv4 packets over the softwire's MTU, dropped */
	C_NOT_FROM_AFTR,  /* IPv4-in-IPv6 to the B4 from another source, dropped */
	C_OUTER_FRAGMENT, /* fragmented IPv4-in-IPv6 to the B4, dropped */
	C_MALFORMED,      /* headers that do not parse, dropped */
	C_NO_ROUTE,       /* no route or neighbour towards the AFTR, dropped */
	C_ERROR,          /* a helper failed on a packet, dropped */
	C_MAX,
};

#endif
