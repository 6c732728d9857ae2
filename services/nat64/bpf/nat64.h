/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared between nat64.c and the Go loader (bpf2go turns them into
 * Go structs). Every field is laid out without implicit padding so that the
 * Go side and both endiannesses agree.
 */
#ifndef GIZMO_NAT64_H
#define GIZMO_NAT64_H

#include <linux/types.h>

/* config.flags */
#define F_DENY_CHECK 1 /* look up deny4 (RFC 6052 §3.1 and own networks) */
#define F_NO_FIB 2     /* tests: skip bpf_fib_lookup, redirect to the configured ifindex */
#define F_FAKE_CLOCK 4 /* tests: use config.now_ns instead of the boot clock */
#define F_LAN64 8      /* LAN sources are the lan64 /64s (else the nat64_lan6 trie) */
#define F_LAN96 16     /* the LAN's own IPv4 devices are under lan_pref96, not the PREF64 */

/* The pools: the WAN's IPv4 address (the internet), and the gizmo's own
 * address on the LAN (the LAN's IPv4-only devices, reached by IPv6-only
 * hosts). A binding, a session and an address-filter entry belong to one
 * pool; the keys say which. */
#define POOL_WAN 0
#define POOL_LAN 1

/* config is a single value in a BPF_F_NO_PREALLOC hash map: user space
 * replaces it as a whole, readers see either the old or the new value
 * (RCU), never a mix. */
struct config {
	__u8 pref64[16];      /* the NAT64 prefix, host bits zero */
	__u8 pref64_mask[16]; /* prefix mask; covers the RFC 6052 u octet for lengths < 96 */
	__u8 router6[16];     /* source of ICMPv6 errors we generate */
	__be32 pool4;         /* WAN IPv4 address: the WAN pool; 0: no WAN pool */
	__u32 lan_ifindex;
	__u32 wan_ifindex;
	__u16 lan_mtu;
	__u16 wan_mtu;
	__u16 port_lo_min, port_lo_max; /* pool ports for source ports 0-1023 */
	__u16 port_hi_min, port_hi_max; /* pool ports for source ports 1024-65535 */
	__u32 max_sessions_per_host;
	__u8 pref64_len; /* 32, 40, 48, 56, 64 or 96 (RFC 6052 §2.2) */
	__u8 flags;
	__u16 pad0;
	__u64 now_ns; /* F_FAKE_CLOCK */
	__u64 lan64[4]; /* F_LAN64: the first 8 bytes of each LAN /64 */
	__u8 lan64_n;
	__u8 pad1[7];
	__u32 max_sessions_per_64;     /* all addresses of one /64 together */
	__u32 max_inbound_per_binding; /* sessions opened from the IPv4 side */
	__u32 hash_seed;               /* for the quota slots of addresses and MACs */
	__u32 max_sessions_per_mac;    /* one LAN host (its Ethernet source), all its addresses */
	__u64 icmp_interval_ns; /* one ICMP error per interval ... */
	__u64 icmp_burst_ns;    /* ... with this much credit at most */
	/* The LAN pool (POOL_LAN). IPv6-only hosts reach the LAN's own IPv4
	 * devices through it: destinations in lan_net4 under the PREF64, or
	 * under lan_pref96 with F_LAN96, are translated with lan_pool4 as the
	 * source and sent back out of the LAN. */
	__u8 lan_pref96[16];   /* F_LAN96: the /96 the devices are embedded in */
	__be32 lan_pool4;      /* the gizmo's LAN IPv4 address; 0: no LAN pool */
	__be32 lan_net4;       /* the LAN's IPv4 network ... */
	__be32 lan_mask4;      /* ... and its mask */
	__u16 lan_port_min, lan_port_max; /* pool ports on lan_pool4, for every source port */
};

/* bib6: (IPv6 host, port/identifier, protocol) -> pool port. */
struct bib6_key {
	__u8 addr[16] __attribute__((aligned(4))); /* copied as words (addr.h) */
	__be16 port;
	__u8 proto;
	__u8 pool; /* POOL_WAN, POOL_LAN: a host's port has a binding in each */
};

#define BIB_STATIC 1

struct bib6_val {
	__be16 port4;
	__u8 flags;
	__u8 pad;
	__u32 pad1;
	__u64 used_ns; /* last time a session was created on this binding */
};

/* bib4: (pool port, protocol) -> IPv6 host and port. */
struct bib4_key {
	__be16 port4;
	__u8 proto;
	__u8 pool;
};

struct bib4_val {
	__u8 addr[16] __attribute__((aligned(4)));
	__be16 port;
	__u8 flags;
	__u8 pad;
};

/* sess: one RFC 6146 session, keyed from the IPv6 side. The IPv4 side of
 * the key (remote address and port) is the same in both directions, so a
 * 4->6 packet finds it after one bib4 lookup. */
struct sess_key {
	__u8 addr6[16];
	__be32 addr4; /* remote IPv4 */
	__be16 port6;
	__be16 port4; /* remote port; 0 for ICMP queries */
	__u8 proto;
	__u8 pool;
	__u8 pad[2];
};

/* TCP states, RFC 6146 §3.5.2.2. */
enum tcp_state {
	TCP_CLOSED = 0,
	TCP_V6_INIT = 1,
	TCP_V4_INIT = 2,
	TCP_ESTABLISHED = 3,
	TCP_V4_FIN_RCV = 4,
	TCP_V6_FIN_RCV = 5,
	TCP_V4_FIN_V6_FIN_RCV = 6,
	TCP_TRANS = 7,
};

/* sess_val.flags: what the session was charged to, so that the reaper
 * gives exactly that back (quota.h). */
#define SESS_HOST 1    /* opened from IPv6: slots q128 and q64 */
#define SESS_INBOUND 2 /* opened from IPv4: its binding's slot */
#define SESS_MAC 4     /* opened from IPv6: slot qmac of its Ethernet source */

struct sess_val {
	__u64 last_ns;
	__be16 pool_port;
	__u8 state;
	__u8 flags;
	__u16 q128; /* SESS_HOST: the address's slot in nat64_quota128 */
	__u16 q64;  /* SESS_HOST: its /64's slot in nat64_quota64 */
	__u16 qmac; /* SESS_MAC: its host's slot in nat64_quotamac */
	__u16 pad[3];
};

/* The Ethernet source of a LAN packet: the host that sent it, whatever
 * IPv6 address it used. */
struct mac_addr {
	__u8 b[6];
	__u16 pad;
};

/* adf: address-dependent filtering (RFC 4787 / RFC 6146 §1.2.3). An entry
 * exists while some session of the binding talks to the remote address. */
struct adf_key {
	__be32 addr4;
	__be16 port4; /* pool port */
	__u8 proto;
	__u8 pool;
};

/* frag4: IPv4 fragments after the first of a datagram toward the pool are
 * matched to the host through the first fragment (RFC 6146 §3.4). */
struct frag4_key {
	__be32 src;
	__be16 id;
	__u8 proto;
	__u8 pool; /* the pool address the datagram was sent to */
};

struct frag4_val {
	__u8 addr6[16];
	__u64 first_ns; /* when the first fragment came; the state expires */
};

/* Quota slots (quota.h): powers of two, so that a hash is masked. */
#define Q128_SLOTS 65536
#define Q64_SLOTS 4096
#define QMAC_SLOTS 65536
/* TCP, UDP, ICMP x pool port. The pools' port ranges never overlap (the
 * loader refuses a plan where they do), so a port names its pool too. */
#define QBIND_SLOTS (3 * 65536)

/* host_stats: per LAN host (IPv6 /128), per CPU: through the WAN pool
 * (the internet), and through the LAN pool (the LAN's own IPv4 devices). */
struct host_stats {
	__u64 pkts_out;
	__u64 bytes_out;
	__u64 pkts_in;
	__u64 bytes_in;
	__u64 lan_pkts_out;
	__u64 lan_bytes_out;
	__u64 lan_pkts_in;
	__u64 lan_bytes_in;
};

struct lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct lpm4_key {
	__u32 prefixlen;
	__be32 addr;
};

/* Global counters by outcome; index into the per-CPU counters array. Keep
 * in sync with counterNames in the Go loader. */
enum counter {
	C_XLAT_64 = 0,      /* translated IPv6 -> IPv4 */
	C_XLAT_46,          /* translated IPv4 -> IPv6 */
	C_HAIRPIN,          /* IPv6 -> IPv4 -> IPv6 through the pool (RFC 6146 §3.8) */
	C_NO_SESSION,       /* IPv4 packet to a pool port without binding: passed to the stack */
	C_FILTERED,         /* binding exists, remote not allowed (address-dependent filtering) */
	C_TABLE_FULL,       /* session or binding table full */
	C_PORTS_EXHAUSTED,  /* no free pool port found */
	C_HOST_LIMIT,       /* an address's share of its host's sessions used up */
	C_TO_STACK,         /* deliberately left to the kernel */
	C_MALFORMED,        /* truncated or inconsistent headers */
	C_SRC_NOT_LAN,      /* IPv6 source outside the LAN prefixes */
	C_DST_DENIED,       /* RFC 6052 §3.1 or own networks */
	C_UNSUPPORTED,      /* protocol or ICMP type that RFC 7915 does not translate */
	C_TTL_EXPIRED,      /* time exceeded sent back */
	C_TOO_BIG,          /* packet too big / fragmentation needed sent back */
	C_FRAG_NO_STATE,    /* non-first IPv4 fragment without its first fragment */
	C_ICMP_ERR,         /* ICMP error translated with its inner packet */
	C_NO_ROUTE,         /* FIB lookup failed */
	C_NEEDS_FRAG,       /* IPv4 DF=0 packet too big for the LAN that could not be split: dropped */
	C_HOST_TABLE_FULL,  /* per-host statistics table full (packet still translated) */
	C_MSS_CLAMPED,      /* TCP SYN whose MSS option was lowered (translated, not a drop) */
	C_FRAGMENTED,       /* IPv4 DF=0 packet too big for the LAN, split (frag.h) */
	C_PREFIX_LIMIT,     /* the /64's session limit reached */
	C_INBOUND_REFUSED,  /* the binding's bound of IPv4-opened sessions reached */
	C_ICMP_SUPPRESSED,  /* an ICMP error of ours over the rate: not sent */
	C_ICMP_NOT_ALLOWED, /* no ICMP error may answer this packet: dropped */
	C_FRAG_EXPIRED,     /* non-first IPv4 fragment after its state expired */
	C_MAC_LIMIT,        /* a LAN host's (its MAC's) session limit reached */
	C_ADF_FULL,         /* no room in nat64_adf for a session's remote (translated) */
	C_LAN_REFUSED,      /* a LAN device its owner keeps from IPv6-only hosts */
	C_MAX,
};

#endif
