/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Constants, counters and scratch space shared by every part of the
 * program. Part of nat64.c and clat.c; the NAT64's state is in tables.h,
 * its translation policy in policy.h. */
#ifndef GIZMO_NAT64_MAPS_H
#define GIZMO_NAT64_MAPS_H

#define ETH_HLEN 14
#define IP4_HLEN 20
#define IP6_HLEN 40
#define IPV6_MIN_MTU 1280
#define ICMP4_ERR_MAX 576 /* RFC 1812 §4.3.2.3 */
#define AF_INET 2
#define AF_INET6 10
#define E2BIG 7
#define EEXIST 17

#define IPPROTO_ICMPV6_ 58
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

/* The bigger steps are global functions: the verifier checks each once on
 * its own instead of once per path into it, which keeps loading fast. */

/* Returned by the translators: send the result on with forward(), called
 * from the main program to keep the stack shallow. XLAT_FORWARD is an
 * IPv4 packet for the WAN, or an IPv6 one for the LAN; XLAT_FORWARD_LAN
 * an IPv4 packet for the LAN's own devices (the LAN pool). */
#define XLAT_FORWARD 100
#define XLAT_FORWARD_LAN 103
/* Returned by xlat64/xlat46: the main program calls the ICMP error
 * translator or sends an ICMP error back (type, code, info in struct l4). */
#define XLAT_ICMP_ERR 101
#define XLAT_REPLY 102

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04

/* Writes after bpf_skb_change_proto/adjust_room: the checksum fields are
 * fixed explicitly, so no BPF_F_RECOMPUTE_CSUM. */
#define STORE(skb, off, ptr, len) bpf_skb_store_bytes(skb, off, ptr, len, 0)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_counters SEC(".maps");

/* How long the state of a fragmented IPv4 datagram lives after its first
 * fragment: RFC 791 §3.2's reassembly timer. */
#define FRAG4_TIMEOUT_NS (15ULL * 1000000000ULL)

#define CSUM_CHUNK 512 /* bpf_csum_diff's largest input */
#define CSUM_MAX_CHUNKS 20 /* 10240 bytes: jumbo frames included */

/* Per-CPU scratch space for checksumming whole packets: the stack is too
 * small for a useful chunk. */
struct scratch {
	__u8 buf[CSUM_CHUNK + 4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} nat64_scratch SEC(".maps");

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&nat64_counters, &c);
	if (v)
		*v += 1;
}

static __always_inline int drop(__u32 c)
{
	count(c);
	return TC_ACT_SHOT;
}

/* now_ns is CLOCK_MONOTONIC_COARSE: a memory read, where the precise
 * clocks read the clock source on every packet (a pvclock read took a
 * tenth of nat64_lan's samples in a VM under perf). Session lifetimes are
 * seconds to hours, so a tick of lag does not matter; the Go reaper reads
 * CLOCK_MONOTONIC, which is the same clock a tick ahead. (An appliance
 * does not suspend, so this is also the boot clock of earlier versions
 * whose pinned sessions a restarted daemon takes over.) */
static __always_inline __u64 now_ns(const struct config *cfg)
{
	if (cfg->flags & F_FAKE_CLOCK)
		return cfg->now_ns;
	return bpf_ktime_get_coarse_ns();
}

#endif
