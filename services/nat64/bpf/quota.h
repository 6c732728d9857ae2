/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bounds against a hostile network: session quotas and the ICMP error rate.
 * Part of nat64.c.
 *
 * Quotas. A session opened from the LAN is charged three times: to its
 * host's slot in nat64_quotamac (the Ethernet source: every address a host
 * uses, in every prefix), to its address's slot in nat64_quota128 and to
 * its /64's slot in nat64_quota64. A session opened from the IPv4 side
 * (address-dependent filtering lets a remote in from any of its ports) is
 * charged to its binding's slot in nat64_quotabind, never to the host. The
 * session remembers what it was charged to (sess_val.flags, q128, q64,
 * qmac), and the Go reaper gives exactly that back when it removes it.
 * The counts live in arrays: they cannot fill up, so a full table is never
 * a silently skipped count. Addresses and MACs are hashed to their slots
 * with a seed the attacker does not know; two that share a slot share its
 * quota, which only ever limits early, never lets more in.
 *
 * A check and the add after it are not one atomic step: CPUs opening
 * sessions for one slot at the same instant may each pass the check, so a
 * quota can be exceeded by the number of CPUs at most.
 */
#ifndef GIZMO_NAT64_QUOTA_H
#define GIZMO_NAT64_QUOTA_H

static __always_inline __u32 mix32(__u32 h)
{
	/* murmur3's finalizer: every input bit moves every output bit. */
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* quota_slots computes an IPv6 address's slots: its /64's and its own. */
static __always_inline void quota_slots(const struct config *cfg, const struct in6_addr *a6, __u32 *s64, __u32 *s128)
{
	__u32 w[4];
	__builtin_memcpy(w, a6, 16);
	__u32 h = mix32(cfg->hash_seed ^ w[0]);
	h = mix32(h ^ w[1]);
	*s64 = h & (Q64_SLOTS - 1);
	h = mix32(h ^ w[2]);
	h = mix32(h ^ w[3]);
	*s128 = h & (Q128_SLOTS - 1);
}

/* quota_mac_slot is a LAN host's slot: its Ethernet source address. */
static __always_inline __u32 quota_mac_slot(const struct config *cfg, const struct mac_addr *mac)
{
	__u32 w0;
	__u16 w1;
	__builtin_memcpy(&w0, mac->b, 4);
	__builtin_memcpy(&w1, mac->b + 4, 2);
	__u32 h = mix32(cfg->hash_seed ^ w0);
	h = mix32(h ^ w1);
	return h & (QMAC_SLOTS - 1);
}

/* quota_bind_slot is a binding's slot: protocol and pool port (network
 * order in, as stored). */
static __always_inline __u32 quota_bind_slot(__u8 proto, __be16 port4)
{
	__u32 base = proto == IPPROTO_TCP ? 0 : proto == IPPROTO_UDP ? 65536 : 2 * 65536;
	return base + bpf_ntohs(port4);
}

#define ICMP_TO_LAN 0 /* ICMPv6 errors to LAN hosts */
#define ICMP_TO_WAN 1 /* ICMPv4 errors to remotes */

/* icmp_rate_ok takes one ICMP error from the direction's bucket (RFC 4443
 * §2.4(f), RFC 1812 §4.3.2.8): the generic cell rate algorithm keeps one
 * timestamp, the earliest time the next error is due, and allows a burst
 * of icmp_burst_ns of credit. A race between CPUs can let one more through;
 * it never blocks the bucket. */
static __always_inline int icmp_rate_ok(const struct config *cfg, __u32 dir)
{
	__u64 *tat = bpf_map_lookup_elem(&nat64_icmp_rate, &dir);
	if (!tat)
		return 0;
	__u64 now = now_ns(cfg);
	__u64 t = *tat;
	if (t < now)
		t = now;
	if (t - now > cfg->icmp_burst_ns)
		return 0;
	*tat = t + cfg->icmp_interval_ns;
	return 1;
}

/* reply_limited hands an ICMP error of ours on to be sent, or drops the
 * packet and counts it when the direction's rate is used up. */
static __always_inline int reply_limited(const struct config *cfg, __u32 dir)
{
	if (!icmp_rate_ok(cfg, dir))
		return drop(C_ICMP_SUPPRESSED);
	return XLAT_REPLY;
}

/* ip4_src_unicast: RFC 1812 §4.3.2.7 (and RFC 1122 §3.2.2) sends no ICMP
 * error to a source that does not name a single host: this network (0/8),
 * loopback, multicast and the reserved and broadcast range above it. */
static __always_inline int ip4_src_unicast(__be32 a)
{
	__u8 b[4];
	__builtin_memcpy(b, &a, 4);
	return b[0] != 0 && b[0] != 127 && b[0] < 224;
}

#endif
