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

/* in_lan4 reports an address in the LAN's own IPv4 network (with a LAN
 * pool). Network order on both sides: the mask works byte for byte. */
static __always_inline int in_lan4(const struct config *cfg, __be32 a)
{
	return cfg->lan_pool4 && (a & cfg->lan_mask4) == cfg->lan_net4;
}

static __always_inline int lan96_match(const struct config *cfg, const struct in6_addr *a)
{
	__u32 w[3], p[3];
	__builtin_memcpy(w, a, 12);
	__builtin_memcpy(p, cfg->lan_pref96, 12);
	return (w[0] == p[0]) & (w[1] == p[1]) & (w[2] == p[2]);
}

/* v4_of is the IPv4 address in an address of the translator's: the last 32
 * bits under lan_pref96 (via96), else where the PREF64 puts it. */
static __always_inline __be32 v4_of(const struct config *cfg, const struct in6_addr *a, int via96)
{
	if (via96)
		return a->in6_u.u6_addr32[3];
	return extract4(cfg, a);
}

/* pool_for picks the pool that reaches an IPv4 destination, or -1: the
 * LAN's own network through the LAN pool, when it is under the prefix the
 * LAN pool uses (lan_pref96 with F_LAN96, else the PREF64); anything else
 * through the WAN pool. Under lan_pref96 only the LAN's network exists. */
static __always_inline int pool_for(const struct config *cfg, __be32 a4, int via96)
{
	int lan = in_lan4(cfg, a4);
	if (via96)
		return lan ? POOL_LAN : -1;
	if (lan && !(cfg->flags & F_LAN96))
		return POOL_LAN;
	return cfg->pool4 ? POOL_WAN : -1;
}

/* pool_addr4 is a pool's address. */
static __always_inline __be32 pool_addr4(const struct config *cfg, int pool)
{
	return pool == POOL_LAN ? cfg->lan_pool4 : cfg->pool4;
}

/* pool_of is the pool a packet from the IPv4 side was sent to: the main
 * program takes it only if its destination is a pool address. */
static __always_inline int pool_of(const struct config *cfg, const struct iphdr *ip)
{
	return cfg->pool4 && ip->daddr == cfg->pool4 ? POOL_WAN : POOL_LAN;
}

/* embed_pool is an IPv4 address as the LAN's hosts see it through a pool:
 * under lan_pref96 for the LAN pool with F_LAN96, else in the PREF64. */
static __always_inline void embed_pool(const struct config *cfg, int pool, __be32 a4, struct in6_addr *a)
{
	if (pool == POOL_LAN && (cfg->flags & F_LAN96)) {
		__builtin_memcpy(a, cfg->lan_pref96, 12);
		a->in6_u.u6_addr32[3] = a4;
		return;
	}
	embed4(cfg, a4, a);
}

#endif
