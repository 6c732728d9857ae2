/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Addresses: RFC 6052 embedding, the prefix match, LAN sources and the deny list. Part of nat64.c. */
#ifndef GIZMO_NAT64_ADDR_H
#define GIZMO_NAT64_ADDR_H

/* RFC 6052 §2.2: where the IPv4 address sits in the IPv6 address. Byte 8
 * (the u octet) is skipped for prefixes shorter than /96.
 *
 * Addresses are struct in6_addr (4-byte aligned) throughout: through a
 * plain byte pointer clang copies and compares them a byte at a time,
 * which the interpreter of a kernel without a JIT pays per instruction. */
static __always_inline void embed4(const struct config *cfg, __be32 a4, struct in6_addr *a)
{
	__builtin_memcpy(a, cfg->pref64, 16);
	if (cfg->pref64_len == 96) {
		a->in6_u.u6_addr32[3] = a4;
		return;
	}
	__u8 b[4], *out = a->in6_u.u6_addr8;
	__builtin_memcpy(b, &a4, 4);
	switch (cfg->pref64_len) {
	case 32:
		out[4] = b[0]; out[5] = b[1]; out[6] = b[2]; out[7] = b[3];
		break;
	case 40:
		out[5] = b[0]; out[6] = b[1]; out[7] = b[2]; out[9] = b[3];
		break;
	case 48:
		out[6] = b[0]; out[7] = b[1]; out[9] = b[2]; out[10] = b[3];
		break;
	case 56:
		out[7] = b[0]; out[9] = b[1]; out[10] = b[2]; out[11] = b[3];
		break;
	case 64:
		out[9] = b[0]; out[10] = b[1]; out[11] = b[2]; out[12] = b[3];
		break;
	default:
		out[12] = b[0]; out[13] = b[1]; out[14] = b[2]; out[15] = b[3];
		break;
	}
}

static __always_inline __be32 extract4(const struct config *cfg, const struct in6_addr *in)
{
	if (cfg->pref64_len == 96)
		return in->in6_u.u6_addr32[3];
	const __u8 *a = in->in6_u.u6_addr8;
	__u8 b[4];
	__be32 r;
	switch (cfg->pref64_len) {
	case 32:
		b[0] = a[4]; b[1] = a[5]; b[2] = a[6]; b[3] = a[7];
		break;
	case 40:
		b[0] = a[5]; b[1] = a[6]; b[2] = a[7]; b[3] = a[9];
		break;
	case 48:
		b[0] = a[6]; b[1] = a[7]; b[2] = a[9]; b[3] = a[10];
		break;
	case 56:
		b[0] = a[7]; b[1] = a[9]; b[2] = a[10]; b[3] = a[11];
		break;
	case 64:
		b[0] = a[9]; b[1] = a[10]; b[2] = a[11]; b[3] = a[12];
		break;
	default:
		b[0] = a[12]; b[1] = a[13]; b[2] = a[14]; b[3] = a[15];
		break;
	}
	__builtin_memcpy(&r, b, 4);
	return r;
}

static __always_inline int pref_match(const struct config *cfg, const struct in6_addr *a)
{
	__u32 w[4], p[4], m[4];
	__builtin_memcpy(w, a, 16);
	__builtin_memcpy(p, cfg->pref64, 16);
	__builtin_memcpy(m, cfg->pref64_mask, 16);
	return ((w[0] & m[0]) == p[0]) & ((w[1] & m[1]) == p[1]) & ((w[2] & m[2]) == p[2]) &
	       ((w[3] & m[3]) == p[3]);
}

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

#endif
