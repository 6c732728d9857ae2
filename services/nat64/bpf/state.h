/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* RFC 6146 state: per-host accounting, the TCP state machine, port allocation, session creation. Part of nat64.c. */
#ifndef GIZMO_NAT64_STATE_H
#define GIZMO_NAT64_STATE_H

/* host_account counts a translated packet for its LAN host: out or in,
 * through the pool (POOL_WAN, POOL_LAN). */
static __noinline void host_account(const struct in6_addr *a6, __u64 bytes, int out, int pool)
{
	struct lpm6_key k = {.prefixlen = 128};
	__builtin_memcpy(k.addr, a6, 16);
	struct host_stats *h = bpf_map_lookup_elem(&nat64_hstats, &k);
	if (!h) {
		struct host_stats z = {};
		if (bpf_map_update_elem(&nat64_hstats, &k, &z, BPF_NOEXIST) == -E2BIG) {
			count(C_HOST_TABLE_FULL);
			return;
		}
		h = bpf_map_lookup_elem(&nat64_hstats, &k);
		if (!h)
			return;
	}
	/* Per-CPU value: plain adds are enough. */
	if (pool == POOL_LAN) {
		if (out) {
			h->lan_pkts_out += 1;
			h->lan_bytes_out += bytes;
		} else {
			h->lan_pkts_in += 1;
			h->lan_bytes_in += bytes;
		}
		return;
	}
	if (out) {
		h->pkts_out += 1;
		h->bytes_out += bytes;
	} else {
		h->pkts_in += 1;
		h->bytes_in += bytes;
	}
}

/* RFC 6146 §3.5.2.2 TCP state machine, reduced to what decides the
 * session lifetime. from6 tells the direction of the packet. */
static __always_inline void tcp_track(struct sess_val *s, __u8 flags, int from6)
{
	__u8 st = s->state;
	if (flags & TCPF_RST) {
		if (st != TCP_TRANS)
			s->state = TCP_TRANS;
		return;
	}
	switch (st) {
	case TCP_V6_INIT:
		if (!from6 && (flags & TCPF_SYN))
			st = TCP_ESTABLISHED;
		break;
	case TCP_V4_INIT:
		if (from6 && (flags & TCPF_SYN))
			st = TCP_ESTABLISHED;
		break;
	case TCP_ESTABLISHED:
		if (flags & TCPF_FIN)
			st = from6 ? TCP_V6_FIN_RCV : TCP_V4_FIN_RCV;
		break;
	case TCP_V4_FIN_RCV:
		if (from6 && (flags & TCPF_FIN))
			st = TCP_V4_FIN_V6_FIN_RCV;
		break;
	case TCP_V6_FIN_RCV:
		if (!from6 && (flags & TCPF_FIN))
			st = TCP_V4_FIN_V6_FIN_RCV;
		break;
	case TCP_TRANS:
		st = TCP_ESTABLISHED;
		break;
	}
	/* Most packets change nothing: a store would still pull the shared
	 * line over from the CPU of the other direction. */
	if (st != s->state)
		s->state = st;
}

static __always_inline void sess_touch(struct sess_val *s, __u64 now)
{
	/* Writing the shared line on every packet costs more than it buys:
	 * the reaper works in seconds. */
	if (now - s->last_ns > 1000000000ULL || now < s->last_ns)
		s->last_ns = now;
}

/* alloc_port claims a pool port for a new binding, keeping the port range
 * and, for UDP, the parity of the source port (RFC 6146 §3.5.1.1). The
 * claim is an insert with BPF_NOEXIST, so two CPUs never share a port.
 * The LAN pool has one range for every source port: the gizmo's own
 * services hold the well-known ports of its LAN address, and §3.5.1.1
 * lets a NAT64 without a free port in the range take one elsewhere. */
static __always_inline int alloc_port(const struct config *cfg, __u8 proto, __u16 sport, __u8 pool,
				      struct bib4_val *v, __u16 *out)
{
	__u32 lo = cfg->port_hi_min, hi = cfg->port_hi_max;
	if (pool == POOL_LAN) {
		lo = cfg->lan_port_min;
		hi = cfg->lan_port_max;
	} else if (sport < 1024 && cfg->port_lo_max != 0) {
		lo = cfg->port_lo_min;
		hi = cfg->port_lo_max;
	}
	if (lo == 0 || hi < lo)
		return -1;
	__u32 span = hi - lo + 1;
	__u32 cand = sport;
	/* The key's protocol and pool are set once: kept on the stack, they
	 * cost no register across the helper calls. */
	struct bib4_key k = {.proto = proto, .pool = pool};
	for (int i = 0; i < 16; i++) {
		if (i > 0 || cand < lo || cand > hi)
			cand = lo + bpf_get_prandom_u32() % span;
		if (k.proto == IPPROTO_UDP && ((cand ^ sport) & 1)) {
			if (cand + 1 <= hi)
				cand++;
			else if (cand > lo)
				cand--;
			else
				continue;
		}
		k.port4 = bpf_htons(cand);
		long err = bpf_map_update_elem(&nat64_bib4, &k, v, BPF_NOEXIST);
		if (err == 0) {
			*out = cand;
			return 0;
		}
		if (err == -E2BIG)
			return -2;
	}
	return -1;
}

/* session_new creates the session of an IPv6-originated packet from the
 * LAN host mac, with its binding in the session's pool if the host has
 * none there yet. Returns 0, or the counter to bump plus one. */
__noinline int session_new(const struct config *cfg, struct sess_key *sk, const struct mac_addr *mac, __u64 now)
{
	if (!cfg || !sk || !mac)
		return C_MALFORMED + 1;
	struct sess_val *s;

	/* quota.h: the /64 first, so that a LAN in one /64 cannot take
	 * the whole table from the others; then the host, whatever
	 * addresses it rotates through (RFC 8981); then the address's
	 * share of its host's. */
	__u32 s64, s128, smac = quota_mac_slot(cfg, mac);
	quota_slots(cfg, (const struct in6_addr *)sk->addr6, &s64, &s128);
	__u64 *n64 = bpf_map_lookup_elem(&nat64_quota64, &s64);
	__u64 *n128 = bpf_map_lookup_elem(&nat64_quota128, &s128);
	__u64 *nmac = bpf_map_lookup_elem(&nat64_quotamac, &smac);
	if (!n64 || !n128 || !nmac)
		return C_MALFORMED + 1;
	if (*n64 >= cfg->max_sessions_per_64)
		return C_PREFIX_LIMIT + 1;
	if (*nmac >= cfg->max_sessions_per_mac)
		return C_MAC_LIMIT + 1;
	if (*n128 >= cfg->max_sessions_per_host)
		return C_HOST_LIMIT + 1;

	struct bib6_key bk = {.port = sk->port6, .proto = sk->proto, .pool = sk->pool};
	__builtin_memcpy(bk.addr, sk->addr6, 16);
	struct bib6_val *b = bpf_map_lookup_elem(&nat64_bib6, &bk);
	if (!b) {
		struct bib4_val v4 = {.port = sk->port6};
		__builtin_memcpy(v4.addr, sk->addr6, 16);
		__u16 port;
		int r = alloc_port(cfg, sk->proto, bpf_ntohs(sk->port6), sk->pool, &v4, &port);
		if (r < 0)
			return (r == -2 ? C_TABLE_FULL : C_PORTS_EXHAUSTED) + 1;
		struct bib6_val v6 = {.port4 = bpf_htons(port), .used_ns = now};
		long err = bpf_map_update_elem(&nat64_bib6, &bk, &v6, BPF_NOEXIST);
		if (err) {
			/* Lost a race with another CPU or the table is full:
			 * give the port back. */
			struct bib4_key k4 = {.port4 = bpf_htons(port), .proto = sk->proto, .pool = sk->pool};
			bpf_map_delete_elem(&nat64_bib4, &k4);
			if (err != -EEXIST)
				return C_TABLE_FULL + 1;
		}
		b = bpf_map_lookup_elem(&nat64_bib6, &bk);
		if (!b)
			return C_TABLE_FULL + 1;
	}
	b->used_ns = now;

	struct sess_val nv = {.last_ns = now, .pool_port = b->port4, .flags = SESS_HOST | SESS_MAC,
			      .q128 = s128, .q64 = s64, .qmac = smac};
	if (sk->proto == IPPROTO_TCP)
		nv.state = TCP_V6_INIT;
	long err = bpf_map_update_elem(&nat64_sess, sk, &nv, BPF_NOEXIST);
	if (err && err != -EEXIST)
		return C_TABLE_FULL + 1;
	/* Only the CPU whose insert made the session charges it: the
	 * reaper gives back one charge per session it removes. */
	if (err == 0) {
		__sync_fetch_and_add(n64, 1);
		__sync_fetch_and_add(n128, 1);
		__sync_fetch_and_add(nmac, 1);
	}
	s = bpf_map_lookup_elem(&nat64_sess, sk);
	if (!s)
		return C_TABLE_FULL + 1;
	struct adf_key ak = {.addr4 = sk->addr4, .port4 = s->pool_port, .proto = sk->proto, .pool = sk->pool};
	/* nv.last_ns is now: no stack slot for a copy of it. An entry that
	 * exists (more connections to the same remote) is refreshed in
	 * place: a replacing update would take the bucket lock and an
	 * element from the free list for every new connection. */
	__u64 *seen = bpf_map_lookup_elem(&nat64_adf, &ak);
	if (seen)
		*seen = nv.last_ns;
	else if (bpf_map_update_elem(&nat64_adf, &ak, &nv.last_ns, BPF_ANY) < 0)
		/* The session works, but its remote cannot open more
		 * from other ports: stricter filtering, counted. */
		count(C_ADF_FULL);
	return 0;
}

#endif
