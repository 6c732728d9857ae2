/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What the NAT64 translates: the LAN's sources, and the IPv4 destinations
 * it never translates to. Part of nat64.c; needs maps.h and addr.h. */
#ifndef GIZMO_NAT64_POLICY_H
#define GIZMO_NAT64_POLICY_H

/* LAN prefixes allowed as IPv6 sources. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__type(key, struct lpm6_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_lan6 SEC(".maps");

/* IPv4 destinations never translated to (RFC 6052 §3.1, own networks). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__type(key, struct lpm4_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_deny4 SEC(".maps");

/* The LAN's IPv4 devices that its owner keeps from IPv6-only hosts: the
 * LAN pool never translates to them. */
#define LAN_REFUSED_MAX 4096
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LAN_REFUSED_MAX);
	__type(key, __be32);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_lan_refused SEC(".maps");

static __always_inline int lan_source(const struct config *cfg, const struct in6_addr *a)
{
	if (cfg->flags & F_LAN64) {
		/* The usual LAN: a few /64s, compared without a trie walk. */
		__u64 hi;
		__builtin_memcpy(&hi, a, 8);
		int n = cfg->lan64_n;
		return (n > 0 && hi == cfg->lan64[0]) | (n > 1 && hi == cfg->lan64[1]) |
		       (n > 2 && hi == cfg->lan64[2]) | (n > 3 && hi == cfg->lan64[3]);
	}
	struct lpm6_key k = {.prefixlen = 128};
	__builtin_memcpy(k.addr, a, 16);
	return bpf_map_lookup_elem(&nat64_lan6, &k) != 0;
}

static __always_inline int denied4(const struct config *cfg, __be32 a)
{
	if (!(cfg->flags & F_DENY_CHECK) || a == cfg->pool4)
		return 0;
	struct lpm4_key k = {.prefixlen = 32, .addr = a};
	return bpf_map_lookup_elem(&nat64_deny4, &k) != 0;
}

/* refused4 says why a destination is never translated to, as the counter
 * plus one, or 0. Through the WAN pool: the deny list (RFC 6052 §3.1, the
 * gizmo's own networks). Through the LAN pool: the gizmo itself, the
 * network's own and broadcast addresses (no amplifier), and the devices
 * their owner keeps from IPv6-only hosts. */
static __always_inline int refused4(const struct config *cfg, int pool, __be32 a)
{
	if (pool != POOL_LAN)
		return denied4(cfg, a) ? C_DST_DENIED + 1 : 0;
	__be32 host = a & ~cfg->lan_mask4;
	if (a == cfg->lan_pool4 || host == 0 || host == ~cfg->lan_mask4)
		return C_DST_DENIED + 1;
	if (bpf_map_lookup_elem(&nat64_lan_refused, &a))
		return C_LAN_REFUSED + 1;
	return 0;
}

#endif
