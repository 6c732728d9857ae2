// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Stateful NAT64 (RFC 6146) with RFC 7915 header translation, as two tc
 * programs attached with tcx:
 *   nat64_lan on lan0 ingress:   IPv6 to the NAT64 prefix -> IPv4 out uplink0
 *   nat64_wan on uplink0 ingress: IPv4 to the pool address -> IPv6 out lan0
 * Packets that are not ours return TC_ACT_OK untouched. Packets for us that
 * we cannot translate are dropped and counted, or handed to the kernel where
 * it does the right thing (pings to the router, ports without a binding).
 *
 * Reads go through bpf_skb_load_bytes and writes through bpf_skb_store_bytes:
 * slower than direct packet access by a little, but every bound is checked
 * by the helper and the verifier has no packet pointers to lose track of.
 *
 * Built against the UAPI headers only (no vmlinux.h, no CO-RE): the target
 * kernels have no BTF.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "nat64.h"

char __license[] SEC("license") = "Dual BSD/GPL";

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

/* Returned by the ICMP error translators: send the result on with
 * forward(), called from the main program to keep the stack shallow. */
#define XLAT_FORWARD 100
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
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bib6_key);
	__type(value, struct bib6_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_bib6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bib4_key);
	__type(value, struct bib4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_bib4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, struct sess_key);
	__type(value, struct sess_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_sess SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, struct adf_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_adf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct frag4_key);
	__type(value, struct frag4_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_frag4 SEC(".maps");

/* Sessions ever created per host; only the program writes it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct lpm6_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_hcreated SEC(".maps");

/* Sessions reaped per host; only the Go reaper writes it. The difference
 * is the live count, kept without a user space read-modify-write race. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct lpm6_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_hreaped SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct lpm6_key);
	__type(value, struct host_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_hstats SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_counters SEC(".maps");

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

static __always_inline __u64 now_ns(const struct config *cfg)
{
	if (cfg->flags & F_FAKE_CLOCK)
		return cfg->now_ns;
	return bpf_ktime_get_boot_ns();
}

static __always_inline __u16 csum_fold(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* csum_skb adds len bytes of the packet at off to the partial sum *sum.
 * Odd lengths are padded with a zero byte, as RFC 1071 requires. */
__noinline int csum_skb(struct __sk_buff *skb, __u32 off, __u32 len, __u32 *sum)
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
	__u8 src[16];
	__u8 dst[16];
	__be32 len;
	__be32 nexthdr;
};

static __noinline __u32 pseudo6_sum(const __u8 *src, const __u8 *dst, __u32 len, __u8 nh)
{
	struct pseudo6 p;
	__builtin_memcpy(p.src, src, 16);
	__builtin_memcpy(p.dst, dst, 16);
	p.len = bpf_htonl(len);
	p.nexthdr = bpf_htonl(nh);
	return bpf_csum_diff(0, 0, (__be32 *)&p, sizeof(p), 0);
}

static __always_inline void ip4_csum(struct iphdr *ip)
{
	ip->check = 0;
	ip->check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)ip, IP4_HLEN, 0));
}

/* RFC 6052 §2.2: where the IPv4 address sits in the IPv6 address. Byte 8
 * (the u octet) is skipped for prefixes shorter than /96. */
static __always_inline void embed4(const struct config *cfg, __be32 a4, __u8 *out)
{
	__u8 b[4];
	__builtin_memcpy(b, &a4, 4);
	__builtin_memcpy(out, cfg->pref64, 16);
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

static __always_inline __be32 extract4(const struct config *cfg, const __u8 *a)
{
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

static __always_inline int pref_match(const struct config *cfg, const __u8 *a)
{
	__u32 w[4], p[4], m[4];
	__builtin_memcpy(w, a, 16);
	__builtin_memcpy(p, cfg->pref64, 16);
	__builtin_memcpy(m, cfg->pref64_mask, 16);
	return ((w[0] & m[0]) == p[0]) & ((w[1] & m[1]) == p[1]) & ((w[2] & m[2]) == p[2]) &
	       ((w[3] & m[3]) == p[3]);
}

static __always_inline int lan_source(const __u8 *a)
{
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

static __noinline void host_account(const __u8 *a6, __u64 bytes, int out)
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
 * claim is an insert with BPF_NOEXIST, so two CPUs never share a port. */
static __always_inline int alloc_port(const struct config *cfg, __u8 proto, __u16 sport,
				      struct bib4_val *v, __u16 *out)
{
	__u32 lo = cfg->port_hi_min, hi = cfg->port_hi_max;
	if (sport < 1024 && cfg->port_lo_max != 0) {
		lo = cfg->port_lo_min;
		hi = cfg->port_lo_max;
	}
	if (lo == 0 || hi < lo)
		return -1;
	__u32 span = hi - lo + 1;
	__u32 cand = sport;
	for (int i = 0; i < 16; i++) {
		if (i > 0 || cand < lo || cand > hi)
			cand = lo + bpf_get_prandom_u32() % span;
		if (proto == IPPROTO_UDP && ((cand ^ sport) & 1)) {
			if (cand + 1 <= hi)
				cand++;
			else if (cand > lo)
				cand--;
			else
				continue;
		}
		struct bib4_key k = {.port4 = bpf_htons(cand), .proto = proto};
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

/* host_created counts a new session of host a6 (the live count is created
 * minus what the reaper removed). */
static __always_inline void host_created(const __u8 *a6)
{
	struct lpm6_key hk = {.prefixlen = 128};
	__builtin_memcpy(hk.addr, a6, 16);
	__u64 *created = bpf_map_lookup_elem(&nat64_hcreated, &hk);
	if (created) {
		__sync_fetch_and_add(created, 1);
		return;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(&nat64_hcreated, &hk, &one, BPF_NOEXIST) == -EEXIST) {
		created = bpf_map_lookup_elem(&nat64_hcreated, &hk);
		if (created)
			__sync_fetch_and_add(created, 1);
	}
}

/* session_new creates the session of an IPv6-originated packet, with its
 * binding if the host has none yet. Returns 0, or the counter to bump
 * plus one. */
__noinline int session_new(const struct config *cfg, struct sess_key *sk, __u64 now)
{
	if (!cfg || !sk)
		return C_MALFORMED + 1;
	struct sess_val *s;

	struct lpm6_key hk = {.prefixlen = 128};
	__builtin_memcpy(hk.addr, sk->addr6, 16);
	__u64 *created = bpf_map_lookup_elem(&nat64_hcreated, &hk);
	if (created && cfg->max_sessions_per_host) {
		__u64 *reaped = bpf_map_lookup_elem(&nat64_hreaped, &hk);
		__u64 done = reaped ? *reaped : 0;
		__u64 live = *created > done ? *created - done : 0;
		if (live >= cfg->max_sessions_per_host)
			return C_HOST_LIMIT + 1;
	}

	struct bib6_key bk = {.port = sk->port6, .proto = sk->proto};
	__builtin_memcpy(bk.addr, sk->addr6, 16);
	struct bib6_val *b = bpf_map_lookup_elem(&nat64_bib6, &bk);
	if (!b) {
		struct bib4_val v4 = {.port = sk->port6};
		__builtin_memcpy(v4.addr, sk->addr6, 16);
		__u16 port;
		int r = alloc_port(cfg, sk->proto, bpf_ntohs(sk->port6), &v4, &port);
		if (r < 0)
			return (r == -2 ? C_TABLE_FULL : C_PORTS_EXHAUSTED) + 1;
		struct bib6_val v6 = {.port4 = bpf_htons(port), .used_ns = now};
		long err = bpf_map_update_elem(&nat64_bib6, &bk, &v6, BPF_NOEXIST);
		if (err) {
			/* Lost a race with another CPU or the table is full:
			 * give the port back. */
			struct bib4_key k4 = {.port4 = bpf_htons(port), .proto = sk->proto};
			bpf_map_delete_elem(&nat64_bib4, &k4);
			if (err != -EEXIST)
				return C_TABLE_FULL + 1;
		}
		b = bpf_map_lookup_elem(&nat64_bib6, &bk);
		if (!b)
			return C_TABLE_FULL + 1;
	}
	b->used_ns = now;

	struct sess_val nv = {.last_ns = now, .pool_port = b->port4};
	if (sk->proto == IPPROTO_TCP)
		nv.state = TCP_V6_INIT;
	long err = bpf_map_update_elem(&nat64_sess, sk, &nv, BPF_NOEXIST);
	if (err && err != -EEXIST)
		return C_TABLE_FULL + 1;
	s = bpf_map_lookup_elem(&nat64_sess, sk);
	if (!s)
		return C_TABLE_FULL + 1;
	struct adf_key ak = {.addr4 = sk->addr4, .port4 = s->pool_port, .proto = sk->proto};
	bpf_map_update_elem(&nat64_adf, &ak, &now, BPF_ANY);

	host_created(sk->addr6);
	return 0;
}

static __always_inline int swap_macs(struct __sk_buff *skb)
{
	__u8 m[12], s[12];
	if (bpf_skb_load_bytes(skb, 0, m, 12) < 0)
		return -1;
	__builtin_memcpy(s, m + 6, 6);
	__builtin_memcpy(s + 6, m, 6);
	return STORE(skb, 0, s, 12);
}

static __always_inline int set_ethertype(struct __sk_buff *skb, __u16 proto)
{
	__be16 p = bpf_htons(proto);
	return STORE(skb, 12, &p, 2);
}

/* icmp6_reply turns the IPv6 packet in skb into an ICMPv6 error about it
 * (RFC 4443 §2.4: as much of the packet as fits in 1280 bytes) and sends it
 * back where it came from. */
__noinline int icmp6_reply(struct __sk_buff *skb, const struct config *cfg,
				  const struct ipv6hdr *orig, __u32 typecode, __u32 info)
{
	if (!cfg || !orig)
		return TC_ACT_SHOT;
	__u8 type = typecode >> 8, code = typecode & 0xff;
	if (skb->gso_size)
		return TC_ACT_OK; /* the kernel forwards GSO and sends its own errors */
	__u32 l3 = skb->len - ETH_HLEN;
	__u32 quote = l3;
	if (quote > IPV6_MIN_MTU - IP6_HLEN - 8)
		quote = IPV6_MIN_MTU - IP6_HLEN - 8;
	if (bpf_skb_adjust_room(skb, IP6_HLEN + 8, BPF_ADJ_ROOM_MAC, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_change_tail(skb, ETH_HLEN + IP6_HLEN + 8 + quote, 0) < 0)
		return TC_ACT_SHOT;

	struct ipv6hdr ip = {};
	ip.version = 6;
	ip.payload_len = bpf_htons(8 + quote);
	ip.nexthdr = IPPROTO_ICMPV6_;
	ip.hop_limit = 64;
	__builtin_memcpy(&ip.saddr, cfg->router6, 16);
	__builtin_memcpy(&ip.daddr, &orig->saddr, 16);
	__u8 icmp[8] = {type, code, 0, 0};
	__be32 inf = bpf_htonl(info);
	__builtin_memcpy(icmp + 4, &inf, 4);
	if (STORE(skb, ETH_HLEN, &ip, IP6_HLEN) < 0 || STORE(skb, ETH_HLEN + IP6_HLEN, icmp, 8) < 0)
		return TC_ACT_SHOT;
	__u32 sum = pseudo6_sum((__u8 *)&ip.saddr, (__u8 *)&ip.daddr, 8 + quote, IPPROTO_ICMPV6_);
	if (csum_skb(skb, ETH_HLEN + IP6_HLEN, 8 + quote, &sum) < 0)
		return TC_ACT_SHOT;
	__u16 c = csum_fold(sum);
	if (STORE(skb, ETH_HLEN + IP6_HLEN + 2, &c, 2) < 0 || swap_macs(skb) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* icmp4_reply is icmp6_reply for IPv4 (RFC 1812 §4.3.2.3: at most 576
 * bytes), sent from the pool address. */
__noinline int icmp4_reply(struct __sk_buff *skb, const struct config *cfg,
				  const struct iphdr *orig, __u32 typecode, __u32 info)
{
	if (!cfg || !orig)
		return TC_ACT_SHOT;
	__u8 type = typecode >> 8, code = typecode & 0xff;
	if (skb->gso_size)
		return TC_ACT_SHOT;
	__u32 quote = skb->len - ETH_HLEN;
	if (quote > ICMP4_ERR_MAX - IP4_HLEN - 8)
		quote = ICMP4_ERR_MAX - IP4_HLEN - 8;
	if (bpf_skb_adjust_room(skb, IP4_HLEN + 8, BPF_ADJ_ROOM_MAC, 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_change_tail(skb, ETH_HLEN + IP4_HLEN + 8 + quote, 0) < 0)
		return TC_ACT_SHOT;

	struct iphdr ip = {};
	ip.version = 4;
	ip.ihl = 5;
	ip.tot_len = bpf_htons(IP4_HLEN + 8 + quote);
	ip.id = (__be16)bpf_get_prandom_u32();
	ip.ttl = 64;
	ip.protocol = IPPROTO_ICMP;
	ip.saddr = cfg->pool4;
	ip.daddr = orig->saddr;
	ip4_csum(&ip);
	__u8 icmp[8] = {type, code, 0, 0};
	__be32 inf = bpf_htonl(info);
	__builtin_memcpy(icmp + 4, &inf, 4);
	if (STORE(skb, ETH_HLEN, &ip, IP4_HLEN) < 0 || STORE(skb, ETH_HLEN + IP4_HLEN, icmp, 8) < 0)
		return TC_ACT_SHOT;
	__u32 sum = 0;
	if (csum_skb(skb, ETH_HLEN + IP4_HLEN, 8 + quote, &sum) < 0)
		return TC_ACT_SHOT;
	__u16 c = csum_fold(sum);
	if (STORE(skb, ETH_HLEN + IP4_HLEN + 2, &c, 2) < 0 || swap_macs(skb) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* forward sends a translated packet out of ifindex: bpf_fib_lookup finds
 * the next hop, and bpf_redirect_neigh resolves it when the neighbour
 * table does not know it yet. */
__noinline int forward(struct __sk_buff *skb, const struct config *cfg, int v6)
{
	if (!cfg)
		return TC_ACT_SHOT;
	__u32 ifindex = v6 ? cfg->lan_ifindex : cfg->wan_ifindex;
	if (cfg->flags & F_NO_FIB)
		return bpf_redirect(ifindex, 0);

	struct bpf_fib_lookup fib = {};
	fib.ifindex = ifindex;
	/* The addresses come from the translated header itself. */
	if (v6) {
		fib.family = AF_INET6;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, fib.ipv6_src, 32) < 0)
			return drop(C_MALFORMED);
	} else {
		fib.family = AF_INET;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 12, &fib.ipv4_src, 8) < 0)
			return drop(C_MALFORMED);
	}
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__u8 macs[12];
		__builtin_memcpy(macs, fib.dmac, 6);
		__builtin_memcpy(macs + 6, fib.smac, 6);
		if (STORE(skb, 0, macs, 12) < 0)
			return TC_ACT_SHOT;
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpf_redir_neigh nh = {};
		nh.nh_family = fib.family;
		if (fib.family == AF_INET6)
			__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
		else
			nh.ipv4_nh = fib.ipv4_dst;
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		/* The egress MTU is below the one in the plan (which sends
		 * the ICMP errors): the plan is behind the link. */
		return drop(C_NEEDS_FRAG);
	return drop(C_NO_ROUTE);
}

/* ipv6 extension headers that RFC 7915 §5.1 lets the translator skip. */
struct ext6 {
	__u32 off;   /* of the upper-layer header, from the start of L3 */
	__u8 nh;     /* upper-layer protocol */
	__u8 frag;   /* a fragment header is present */
	__u8 mf;
	__u8 pad;
	__u16 fo;    /* fragment offset in bytes */
	__u16 pad1;
	__be32 id;
};

__noinline int walk_ext6(struct __sk_buff *skb, __u8 nh, struct ext6 *e)
{
	if (!e)
		return -1;
	__u32 off = IP6_HLEN;
	e->frag = 0;
	for (int i = 0; i < 4; i++) {
		__u8 h[8];
		if (nh == NEXTHDR_HOP || nh == NEXTHDR_DEST || nh == NEXTHDR_ROUTING) {
			if (bpf_skb_load_bytes(skb, ETH_HLEN + off, h, 4) < 0)
				return -1;
			/* A routing header with segments left is not ours to
			 * skip (RFC 7915 §5.1). */
			if (nh == NEXTHDR_ROUTING && h[3] != 0)
				return -2;
			nh = h[0];
			off += ((__u32)h[1] + 1) * 8;
			continue;
		}
		if (nh == NEXTHDR_FRAGMENT) {
			if (bpf_skb_load_bytes(skb, ETH_HLEN + off, h, 8) < 0)
				return -1;
			nh = h[0];
			__u16 fo = ((__u16)h[2] << 8) | h[3];
			e->frag = 1;
			e->fo = fo & 0xfff8;
			e->mf = fo & 1;
			__builtin_memcpy(&e->id, h + 4, 4);
			off += 8;
			if (nh == NEXTHDR_HOP || nh == NEXTHDR_DEST || nh == NEXTHDR_ROUTING ||
			    nh == NEXTHDR_FRAGMENT)
				return -2;
			break;
		}
		break;
	}
	if (nh == NEXTHDR_HOP || nh == NEXTHDR_DEST || nh == NEXTHDR_ROUTING || nh == NEXTHDR_FRAGMENT)
		return -2;
	if (off > 512)
		return -2;
	e->off = off;
	e->nh = nh;
	return 0;
}

static __always_inline __u8 tclass(const struct ipv6hdr *ip)
{
	return (ip->priority << 4) | (ip->flow_lbl[0] >> 4);
}

/* ICMPv6 -> ICMPv4 type and code, RFC 7915 §5.2. Returns -1 for messages
 * that are dropped. info is the 4-byte rest of header in host order. */
static __always_inline int icmp_err_64(__u8 *type, __u8 *code, __u32 *info, const struct config *cfg)
{
	switch (*type) {
	case 1: /* destination unreachable */
		switch (*code) {
		case 0: case 2: case 3: *code = 1; break; /* host unreachable */
		case 1: *code = 10; break;                 /* admin prohibited */
		case 4: *code = 3; break;                  /* port unreachable */
		default: return -1;
		}
		*type = 3;
		*info = 0;
		return 0;
	case 2: { /* packet too big */
		__u32 mtu = *info;
		if (mtu < 20 + 68)
			return -1;
		mtu -= 20;
		if (mtu > cfg->wan_mtu)
			mtu = cfg->wan_mtu;
		*type = 3;
		*code = 4;
		*info = mtu & 0xffff;
		return 0;
	}
	case 3: /* time exceeded */
		*type = 11;
		*info = 0;
		return 0;
	case 4: /* parameter problem */
		if (*code == 1) {
			*type = 3;
			*code = 2;
			*info = 0;
			return 0;
		}
		if (*code != 0)
			return -1;
		{
			/* RFC 7915 §5.2 figure 6 */
			static const __s8 ptr[64] = {
				0, 1, -1, -1, 2, 2, 9, 8,
				12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
				16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
			};
			__u32 p = *info;
			if (p >= 40 || ptr[p & 63] < 0)
				return -1;
			*type = 12;
			*code = 0;
			*info = (__u32)ptr[p & 63] << 24;
			return 0;
		}
	}
	return -1;
}

/* ICMPv4 -> ICMPv6, RFC 7915 §4.2. */
static __always_inline int icmp_err_46(__u8 *type, __u8 *code, __u32 *info, const struct config *cfg)
{
	switch (*type) {
	case 3:
		switch (*code) {
		case 0: case 1: case 5: case 6: case 7: case 8: case 11: case 12:
			*type = 1; *code = 0; *info = 0;
			return 0;
		case 2:
			*type = 4; *code = 1; *info = 6;
			return 0;
		case 3:
			*type = 1; *code = 4; *info = 0;
			return 0;
		case 4: {
			__u32 mtu = *info & 0xffff;
			mtu += 20;
			if (mtu > cfg->lan_mtu)
				mtu = cfg->lan_mtu;
			if (mtu < IPV6_MIN_MTU)
				mtu = IPV6_MIN_MTU;
			*type = 2; *code = 0; *info = mtu;
			return 0;
		}
		case 9: case 10: case 13: case 15:
			*type = 1; *code = 1; *info = 0;
			return 0;
		}
		return -1;
	case 11:
		*type = 3; *info = 0;
		return 0;
	case 12:
		if (*code != 0 && *code != 2)
			return -1;
		{
			/* RFC 7915 §4.2 figure 3 */
			static const __s8 ptr[32] = {0, 1, 4, 4, -1, -1, -1, -1, 7, 6, -1, -1,
						     8, 8, 8, 8, 24, 24, 24, 24};
			__u32 p = *info >> 24;
			if (p >= 20 || ptr[p & 31] < 0)
				return -1;
			*type = 4; *code = 0; *info = ptr[p & 31];
			return 0;
		}
	}
	return -1;
}

/* l4 describes the upper-layer header fields the translator rewrites. */
struct l4 {
	__be16 sport, dport; /* ICMP queries: identifier in both */
	__u16 csum_off;      /* from the start of the L4 header; 0 = none */
	__u8 flags;          /* TCP flags */
	__u8 type, code;     /* ICMP */
	__u8 pad[3];
	__u32 info;          /* ICMP rest of header, host order */
};

static __always_inline int load_l4(struct __sk_buff *skb, __u32 off, __u8 proto, struct l4 *l)
{
	__u8 h[16];
	if (proto == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, off, h, 14) < 0)
			return -1;
		l->flags = h[13];
		l->csum_off = 16;
	} else if (proto == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, off, h, 8) < 0)
			return -1;
		l->csum_off = 6;
	} else {
		if (bpf_skb_load_bytes(skb, off, h, 8) < 0)
			return -1;
		l->type = h[0];
		l->code = h[1];
		__be32 inf;
		__builtin_memcpy(&inf, h + 4, 4);
		l->info = bpf_ntohl(inf);
		l->csum_off = 2;
		__builtin_memcpy(&l->sport, h + 4, 2);
		__builtin_memcpy(&l->dport, h + 4, 2);
		return 0;
	}
	__builtin_memcpy(&l->sport, h, 2);
	__builtin_memcpy(&l->dport, h + 2, 2);
	return 0;
}

/* ---------------------------------------------------------------- 6 -> 4 */

/* xlat_icmp6_err translates an ICMPv6 error from the LAN whose inner packet
 * belongs to a session (RFC 7915 §5.2, RFC 6146 §3.5.3). */
__noinline int xlat_icmp6_err(struct __sk_buff *skb, const struct config *cfg,
				     const struct ipv6hdr *ip6, const struct ext6 *e, struct l4 *o)
{
	if (!cfg || !ip6 || !e || !o)
		return TC_ACT_SHOT;
	__be32 dst4 = extract4(cfg, (__u8 *)&ip6->daddr);
	__u8 type = o->type, code = o->code;
	__u32 info = o->info;
	if (e->frag && (e->fo || e->mf))
		return drop(C_UNSUPPORTED);
	if (icmp_err_64(&type, &code, &info, cfg) < 0)
		return drop(C_UNSUPPORTED);

	__u32 in_off = ETH_HLEN + e->off + 8;
	struct ipv6hdr in6;
	if (bpf_skb_load_bytes(skb, in_off, &in6, IP6_HLEN) < 0)
		return drop(C_MALFORMED);
	__u8 in_nh = in6.nexthdr;
	/* An inner fragment header (RFC 7915 §5.1.1) becomes the inner IPv4
	 * header's identification and flags. */
	__u32 iext = 0;
	__be16 in_id = 0, in_frag = 0;
	int in_has_frag = 0;
	if (in_nh == NEXTHDR_FRAGMENT) {
		__u8 fh[8];
		if (bpf_skb_load_bytes(skb, in_off + IP6_HLEN, fh, 8) < 0)
			return drop(C_MALFORMED);
		in_nh = fh[0];
		__u16 fo = ((__u16)fh[2] << 8) | fh[3];
		in_frag = bpf_htons(((fo & 0xfff8) >> 3) | ((fo & 1) ? 0x2000 : 0));
		__builtin_memcpy(&in_id, fh + 6, 2);
		in_has_frag = 1;
		iext = 8;
		if (fo & 0xfff8)
			return drop(C_UNSUPPORTED);
	}
	if (in_nh != IPPROTO_TCP && in_nh != IPPROTO_UDP && in_nh != IPPROTO_ICMPV6_)
		return drop(C_UNSUPPORTED);
	if (!pref_match(cfg, (__u8 *)&in6.saddr))
		return drop(C_NO_SESSION);
	__u32 l4_off = in_off + IP6_HLEN + iext;
	struct l4 il = {};
	if (load_l4(skb, l4_off, in_nh, &il) < 0)
		return drop(C_MALFORMED);
	__u8 in_proto = in_nh;
	if (in_nh == IPPROTO_ICMPV6_) {
		/* Only queries can be quoted: an error about an error is never
		 * sent (RFC 4443 §2.4 e), so it is not translated either. */
		if (il.type != 129 && il.type != 128)
			return drop(C_UNSUPPORTED);
		in_proto = IPPROTO_ICMP;
	}
	__be32 r4 = extract4(cfg, (__u8 *)&in6.saddr);

	struct sess_key sk = {.addr4 = r4, .port6 = il.dport, .proto = in_proto};
	if (in_proto != IPPROTO_ICMP)
		sk.port4 = il.sport;
	__builtin_memcpy(sk.addr6, &in6.daddr, 16);
	struct sess_val *s = bpf_map_lookup_elem(&nat64_sess, &sk);
	if (!s)
		return drop(C_NO_SESSION);
	__be16 pool_port = s->pool_port;

	/* Inner upper-layer header, rewritten in place first. */
	__u32 in_len = bpf_ntohs(in6.payload_len);
	if (in_len < iext)
		return drop(C_MALFORMED);
	in_len -= iext;
	__u32 avail = skb->len - l4_off;
	if (in_proto == IPPROTO_ICMP) {
		__u8 ot[2] = {il.type, il.code}, t[2] = {il.type == 128 ? 8 : 0, il.code};
		__u16 old_t, new_t;
		__builtin_memcpy(&old_t, ot, 2);
		__builtin_memcpy(&new_t, t, 2);
		__u16 c;
		if (avail >= 4 && bpf_skb_load_bytes(skb, l4_off + 2, &c, 2) == 0) {
			/* ICMPv6 covers a pseudo-header, ICMPv4 does not:
			 * adding the complement of its sum removes it. */
			__u32 d = pseudo6_sum((__u8 *)&in6.saddr, (__u8 *)&in6.daddr, in_len, IPPROTO_ICMPV6_);
			__u32 acc = (__u16)~c;
			acc += csum_fold(d);
			acc += (__u16)~old_t;
			acc += new_t;
			acc += (__u16)~il.dport;
			acc += pool_port;
			c = csum_fold(acc);
			STORE(skb, l4_off + 2, &c, 2);
		}
		STORE(skb, l4_off, t, 2);
		STORE(skb, l4_off + 4, &pool_port, 2);
	} else {
		__u32 csum_at = l4_off + il.csum_off;
		if (csum_at + 2 <= skb->len) {
			__u16 c;
			bpf_skb_load_bytes(skb, csum_at, &c, 2);
			if (!(in_proto == IPPROTO_UDP && c == 0)) {
				__be32 na[2] = {r4, cfg->pool4};
				__u32 d = bpf_csum_diff((__be32 *)&in6.saddr, 32, na, 8, 0);
				__u32 acc = (__u16)~c;
				acc += (d & 0xffff) + (d >> 16);
				acc += (__u16)~il.dport;
				acc += pool_port;
				c = csum_fold(acc);
				if (in_proto == IPPROTO_UDP && c == 0)
					c = 0xffff;
				STORE(skb, csum_at, &c, 2);
			}
		}
		STORE(skb, l4_off + 2, &pool_port, 2);
	}

	/* Outer sizes: [v6 40][ext][icmp 8][inner v6 40][rest] becomes
	 * [v4 20][icmp 8][inner v4 20][rest], at most 576 bytes. */
	__u32 ext = e->off - IP6_HLEN;
	__u32 plen = bpf_ntohs(ip6->payload_len);
	if (plen < ext + 8 + IP6_HLEN + iext)
		return drop(C_MALFORMED);
	__u32 tot = plen - ext - iext;
	if (tot > ICMP4_ERR_MAX)
		tot = ICMP4_ERR_MAX;

	struct iphdr inner = {};
	inner.version = 4;
	inner.ihl = 5;
	inner.tos = tclass(&in6);
	inner.tot_len = bpf_htons(in_len + IP4_HLEN);
	/* The same DF rule as for the packet itself (RFC 7915 §5.1). */
	if (in_has_frag) {
		inner.id = in_id;
		inner.frag_off = in_frag;
	} else if (in_len + IP4_HLEN > 1260) {
		inner.frag_off = bpf_htons(0x4000);
	}
	inner.ttl = in6.hop_limit;
	inner.protocol = in_proto;
	inner.saddr = r4;
	inner.daddr = cfg->pool4;
	ip4_csum(&inner);

	struct iphdr outer = {};
	outer.version = 4;
	outer.ihl = 5;
	outer.tos = tclass(ip6);
	outer.tot_len = bpf_htons(tot);
	outer.id = (__be16)bpf_get_prandom_u32();
	if (e->frag)
		/* RFC 7915 §5.1.1: the (atomic) fragment header's identification. */
		outer.id = bpf_htons(bpf_ntohl(e->id) & 0xffff);
	outer.ttl = ip6->hop_limit - 1;
	outer.protocol = IPPROTO_ICMP;
	outer.saddr = cfg->pool4;
	outer.daddr = dst4;
	ip4_csum(&outer);

	__u8 icmp[8] = {type, code, 0, 0};
	__be32 inf = bpf_htonl(info);
	__builtin_memcpy(icmp + 4, &inf, 4);

	if (bpf_skb_adjust_room(skb, -(__s32)(ext + 20 + iext), BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_tail(skb, ETH_HLEN + tot, 0) < 0)
		return drop(C_MALFORMED);
	if (set_ethertype(skb, ETH_P_IP) < 0 || STORE(skb, ETH_HLEN, &outer, IP4_HLEN) < 0 ||
	    STORE(skb, ETH_HLEN + IP4_HLEN, icmp, 8) < 0 ||
	    STORE(skb, ETH_HLEN + IP4_HLEN + 8, &inner, IP4_HLEN) < 0)
		return drop(C_MALFORMED);
	__u32 sum = 0;
	if (csum_skb(skb, ETH_HLEN + IP4_HLEN, tot - IP4_HLEN, &sum) < 0)
		return drop(C_MALFORMED);
	__u16 c = csum_fold(sum);
	STORE(skb, ETH_HLEN + IP4_HLEN + 2, &c, 2);
	count(C_ICMP_ERR);
	count(C_XLAT_64);
	if (dst4 == cfg->pool4) {
		count(C_HAIRPIN);
		return bpf_redirect(cfg->wan_ifindex, BPF_F_INGRESS);
	}
	return XLAT_FORWARD;
}

__noinline int xlat64(struct __sk_buff *skb, const struct config *cfg, struct ipv6hdr *ip6,
			     struct ext6 *ep, struct l4 *lp)
{
	if (!cfg || !ip6 || !ep || !lp)
		return TC_ACT_SHOT;
	if (!lan_source((__u8 *)&ip6->saddr))
		return drop(C_SRC_NOT_LAN);
	__be32 dst4 = extract4(cfg, (__u8 *)&ip6->daddr);
	if (denied4(cfg, dst4))
		return drop(C_DST_DENIED);

	__u32 plen = bpf_ntohs(ip6->payload_len);
	if (plen == 0 || IP6_HLEN + plen > skb->len - ETH_HLEN)
		return drop(C_MALFORMED);
	/* Ethernet pads short frames: the padding must not become payload. */
	if (IP6_HLEN + plen < skb->len - ETH_HLEN && !skb->gso_size &&
	    bpf_skb_change_tail(skb, ETH_HLEN + IP6_HLEN + plen, 0) < 0)
		return drop(C_MALFORMED);

	int r = walk_ext6(skb, ip6->nexthdr, ep);
	if (r == -1)
		return drop(C_MALFORMED);
	if (r < 0)
		return drop(C_UNSUPPORTED);
	__u32 ext = ep->off - IP6_HLEN;
	if (ext > plen)
		return drop(C_MALFORMED);
	if (ext && skb->gso_size)
		return drop(C_UNSUPPORTED);

	/* RFC 7915 §5.1: hop limit. The packet expires here. */
	if (ip6->hop_limit <= 1) {
		count(C_TTL_EXPIRED);
		lp->type = 3;
		lp->code = 0;
		lp->info = 0;
		return XLAT_REPLY;
	}

	__u8 nh = ep->nh;
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_ICMPV6_)
		return drop(C_UNSUPPORTED);
	__u8 proto = nh == IPPROTO_ICMPV6_ ? IPPROTO_ICMP : nh;
	__u32 tot = plen - ext + IP4_HLEN;
	__u64 now = now_ns(cfg);

	/* RFC 7915 §5.1: DF is set for packets over 1260 bytes only, so that
	 * IPv4 routers may fragment the small ones. */
	__be16 frag = tot > 1260 ? bpf_htons(0x4000) : 0;
	__be16 id = (__be16)bpf_get_prandom_u32();
	if (ep->frag) {
		frag = bpf_htons((ep->fo >> 3) | (ep->mf ? 0x2000 : 0));
		id = (__be16)(bpf_ntohl(ep->id) & 0xffff);
		id = bpf_htons(id);
	}

	if (!skb->gso_size && tot > cfg->wan_mtu) {
		/* RFC 7915 §5: Packet Too Big with the IPv4 MTU plus 20. */
		count(C_TOO_BIG);
		__u32 mtu = cfg->wan_mtu + 20;
		if (mtu < IPV6_MIN_MTU)
			mtu = IPV6_MIN_MTU;
		lp->type = 2;
		lp->code = 0;
		lp->info = mtu;
		return XLAT_REPLY;
	}

	__u32 l4_off = ETH_HLEN + ep->off;
	if (ep->frag && ep->fo != 0) {
		/* Non-first fragment: addresses only, no ports to map. The
		 * first fragment carried the L4 checksum fix for all. */
		if (nh == IPPROTO_ICMPV6_)
			return drop(C_UNSUPPORTED);
		goto build;
	}
	if (load_l4(skb, l4_off, nh, lp) < 0)
		return drop(C_MALFORMED);

	if (nh == IPPROTO_ICMPV6_) {
		if (lp->type >= 1 && lp->type <= 4)
			return XLAT_ICMP_ERR;
		/* A fragmented echo's pseudo-header length is unknown here;
		 * atomic fragments (RFC 6946) are whole. */
		if (lp->type != 128 || (ep->frag && (ep->fo || ep->mf)))
			return drop(C_UNSUPPORTED);
	}

	struct sess_key sk = {.addr4 = dst4, .port6 = lp->sport, .proto = proto};
	if (proto != IPPROTO_ICMP)
		sk.port4 = lp->dport;
	__builtin_memcpy(sk.addr6, &ip6->saddr, 16);
	/* RFC 6146 §3.5.2.2: only a SYN opens a TCP session. */
	int may_create = proto != IPPROTO_TCP || (lp->flags & TCPF_SYN);
	struct sess_val *s = bpf_map_lookup_elem(&nat64_sess, &sk);
	if (!s) {
		if (!may_create)
			return drop(C_NO_SESSION);
		int err = session_new(cfg, &sk, now);
		if (err)
			return drop(err - 1);
		s = bpf_map_lookup_elem(&nat64_sess, &sk);
		if (!s)
			return drop(C_TABLE_FULL);
	}
	if (proto == IPPROTO_TCP)
		tcp_track(s, lp->flags, 1);
	sess_touch(s, now);
	__be16 pool_port = s->pool_port;

	/* Upper-layer header: port or identifier, and the checksum. */
	__u32 csum_at = l4_off + lp->csum_off;
	if (proto == IPPROTO_ICMP) {
		/* ICMPv6 covers a pseudo-header, ICMPv4 does not (RFC 7915 §5.2). */
		__u32 d = pseudo6_sum((__u8 *)&ip6->saddr, (__u8 *)&ip6->daddr, plen - ext, IPPROTO_ICMPV6_);
		__u8 ot[2] = {lp->type, lp->code}, nt[2] = {8, lp->code};
		__u16 o16, n16;
		__builtin_memcpy(&o16, ot, 2);
		__builtin_memcpy(&n16, nt, 2);
		__u16 c;
		if (bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
			return drop(C_MALFORMED);
		__u32 acc = (__u16)~c;
		acc += csum_fold(d); /* adding ~pseudo subtracts it */
		acc += (__u16)~o16;
		acc += n16;
		acc += (__u16)~lp->sport;
		acc += pool_port;
		c = csum_fold(acc);
		if (STORE(skb, l4_off, nt, 2) < 0 || STORE(skb, csum_at, &c, 2) < 0 ||
		    STORE(skb, l4_off + 4, &pool_port, 2) < 0)
			return drop(C_MALFORMED);
	} else {
		__u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
		__be32 na[2] = {cfg->pool4, dst4};
		__u32 d = bpf_csum_diff((__be32 *)&ip6->saddr, 32, na, 8, 0);
		if (bpf_l4_csum_replace(skb, csum_at, 0, d, BPF_F_PSEUDO_HDR | mangled) < 0 ||
		    bpf_l4_csum_replace(skb, csum_at, lp->sport, pool_port, 2 | mangled) < 0 ||
		    STORE(skb, l4_off, &pool_port, 2) < 0)
			return drop(C_MALFORMED);
	}

build:;
	struct iphdr ip = {};
	ip.version = 4;
	ip.ihl = 5;
	ip.tos = tclass(ip6);
	ip.tot_len = bpf_htons(tot);
	ip.id = id;
	ip.frag_off = frag;
	ip.ttl = ip6->hop_limit - 1;
	ip.protocol = proto;
	ip.saddr = cfg->pool4;
	ip.daddr = dst4;
	ip4_csum(&ip);

	__u8 src6[16];
	__builtin_memcpy(src6, &ip6->saddr, 16);
	__u32 bytes = skb->len - ETH_HLEN;
	if (ext && bpf_skb_adjust_room(skb, -(__s32)ext, BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0) < 0)
		return drop(C_MALFORMED);
	if (set_ethertype(skb, ETH_P_IP) < 0 || STORE(skb, ETH_HLEN, &ip, IP4_HLEN) < 0)
		return drop(C_MALFORMED);
	host_account(src6, bytes, 1);
	count(C_XLAT_64);
	if (dst4 == cfg->pool4) {
		/* RFC 6146 §3.8 hairpinning: back in through the IPv4 side. */
		count(C_HAIRPIN);
		return bpf_redirect(cfg->wan_ifindex, BPF_F_INGRESS);
	}
	return XLAT_FORWARD;
}

SEC("tc")
int nat64_lan(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&nat64_config, &zero);
	if (!cfg || !cfg->pool4)
		return TC_ACT_OK;
	struct ipv6hdr ip6;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, IP6_HLEN) < 0)
		return TC_ACT_OK;
	if (ip6.version != 6 || !pref_match(cfg, (__u8 *)&ip6.daddr))
		return TC_ACT_OK;
	/* The steps are separate functions called from here, so that no
	 * call chain needs more than the 512 bytes of BPF stack. */
	struct ext6 e = {};
	struct l4 l = {};
	int r = xlat64(skb, cfg, &ip6, &e, &l);
	if (r == XLAT_ICMP_ERR)
		r = xlat_icmp6_err(skb, cfg, &ip6, &e, &l);
	else if (r == XLAT_REPLY)
		return icmp6_reply(skb, cfg, &ip6, ((__u32)l.type << 8) | l.code, l.info);
	if (r == XLAT_FORWARD)
		return forward(skb, cfg, 0);
	return r;
}

/* ---------------------------------------------------------------- 4 -> 6 */

/* xlat_icmp4_err translates an ICMPv4 error about a packet the pool sent
 * (RFC 7915 §4.2, RFC 6146 §3.5.3). */
__noinline int xlat_icmp4_err(struct __sk_buff *skb, const struct config *cfg,
				     const struct iphdr *ip, struct l4 *o)
{
	if (!cfg || !ip || !o)
		return TC_ACT_SHOT;
	__u32 hlen = (ip->ihl & 0xf) * 4;
	int hairpin = ip->saddr == cfg->pool4;
	__u8 type = o->type, code = o->code;
	__u32 info = o->info;
	if (icmp_err_46(&type, &code, &info, cfg) < 0)
		return drop(C_UNSUPPORTED);

	__u32 in_off = ETH_HLEN + hlen + 8;
	struct iphdr in4;
	if (bpf_skb_load_bytes(skb, in_off, &in4, IP4_HLEN) < 0)
		return drop(C_MALFORMED);
	__u32 ihl = in4.ihl * 4;
	if (in4.version != 4 || ihl < IP4_HLEN || in4.saddr != cfg->pool4)
		return drop(C_MALFORMED);
	if (in4.frag_off & bpf_htons(0x1fff))
		return drop(C_UNSUPPORTED);
	__u8 in_proto = in4.protocol;
	if (in_proto != IPPROTO_TCP && in_proto != IPPROTO_UDP && in_proto != IPPROTO_ICMP)
		return drop(C_UNSUPPORTED);
	__u32 l4_off = in_off + ihl;
	struct l4 il = {};
	if (load_l4(skb, l4_off, in_proto, &il) < 0)
		return drop(C_MALFORMED);
	if (in_proto == IPPROTO_ICMP && il.type != 8 && il.type != 0)
		return drop(C_UNSUPPORTED); /* errors about errors: RFC 1122 §3.2.2 */

	struct bib4_key bk = {.port4 = il.sport, .proto = in_proto};
	struct bib4_val *b = bpf_map_lookup_elem(&nat64_bib4, &bk);
	if (!b)
		return drop(C_NO_SESSION);
	struct sess_key sk = {.addr4 = in4.daddr, .port6 = b->port, .proto = in_proto};
	if (in_proto != IPPROTO_ICMP)
		sk.port4 = il.dport;
	__builtin_memcpy(sk.addr6, b->addr, 16);
	if (!bpf_map_lookup_elem(&nat64_sess, &sk))
		return drop(C_NO_SESSION);
	__be16 port6 = b->port;
	__u8 host6[16], r6[16], s6[16];
	__builtin_memcpy(host6, b->addr, 16);
	embed4(cfg, in4.daddr, r6);
	embed4(cfg, ip->saddr, s6);

	__u32 in_len = bpf_ntohs(in4.tot_len);
	if (in_len < ihl)
		return drop(C_MALFORMED);
	in_len -= ihl;

	if (in_proto == IPPROTO_ICMP) {
		__u8 ot[2] = {il.type, il.code}, nt[2] = {il.type == 8 ? 128 : 129, il.code};
		__u16 o16, n16, c;
		__builtin_memcpy(&o16, ot, 2);
		__builtin_memcpy(&n16, nt, 2);
		if (bpf_skb_load_bytes(skb, l4_off + 2, &c, 2) == 0) {
			__u32 d = pseudo6_sum(host6, r6, in_len, IPPROTO_ICMPV6_);
			__u32 acc = (__u16)~c;
			acc += (d & 0xffff) + (d >> 16);
			acc += (__u16)~o16;
			acc += n16;
			acc += (__u16)~il.sport;
			acc += port6;
			c = csum_fold(acc);
			STORE(skb, l4_off + 2, &c, 2);
		}
		STORE(skb, l4_off, nt, 2);
		STORE(skb, l4_off + 4, &port6, 2);
	} else {
		__u32 csum_at = l4_off + il.csum_off;
		__u16 c;
		if (csum_at + 2 <= skb->len && bpf_skb_load_bytes(skb, csum_at, &c, 2) == 0 &&
		    !(in_proto == IPPROTO_UDP && c == 0)) {
			__be32 oa[2] = {in4.saddr, in4.daddr};
			__u8 na[32];
			__builtin_memcpy(na, host6, 16);
			__builtin_memcpy(na + 16, r6, 16);
			__u32 d = bpf_csum_diff(oa, 8, (__be32 *)na, 32, 0);
			__u32 acc = (__u16)~c;
			acc += (d & 0xffff) + (d >> 16);
			acc += (__u16)~il.sport;
			acc += port6;
			c = csum_fold(acc);
			if (in_proto == IPPROTO_UDP && c == 0)
				c = 0xffff;
			STORE(skb, csum_at, &c, 2);
		}
		STORE(skb, l4_off, &port6, 2);
	}

	/* [v4 hlen][icmp 8][inner v4 ihl][rest] becomes
	 * [v6 40][icmp6 8][inner v6 40][rest], at most 1280 bytes. */
	__u32 tot4 = bpf_ntohs(ip->tot_len);
	if (tot4 < hlen + 8 + ihl)
		return drop(C_MALFORMED);
	__u32 plen = tot4 - hlen + (IP6_HLEN - ihl);
	if (plen > IPV6_MIN_MTU - IP6_HLEN)
		plen = IPV6_MIN_MTU - IP6_HLEN;

	struct ipv6hdr inner = {};
	inner.version = 6;
	inner.priority = in4.tos >> 4;
	inner.flow_lbl[0] = in4.tos << 4;
	inner.payload_len = bpf_htons(in_len);
	inner.nexthdr = in_proto == IPPROTO_ICMP ? IPPROTO_ICMPV6_ : in_proto;
	inner.hop_limit = in4.ttl;
	__builtin_memcpy(&inner.saddr, host6, 16);
	__builtin_memcpy(&inner.daddr, r6, 16);

	struct ipv6hdr outer = {};
	outer.version = 6;
	outer.priority = ip->tos >> 4;
	outer.flow_lbl[0] = ip->tos << 4;
	outer.payload_len = bpf_htons(plen);
	outer.nexthdr = IPPROTO_ICMPV6_;
	outer.hop_limit = hairpin ? ip->ttl : ip->ttl - 1;
	__builtin_memcpy(&outer.saddr, s6, 16);
	__builtin_memcpy(&outer.daddr, host6, 16);

	__u8 icmp[8] = {type, code, 0, 0};
	__be32 inf = bpf_htonl(info);
	__builtin_memcpy(icmp + 4, &inf, 4);

	if (hlen > IP4_HLEN && bpf_skb_adjust_room(skb, -(__s32)(hlen - IP4_HLEN), BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_adjust_room(skb, (__s32)IP6_HLEN - (__s32)ihl, BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_tail(skb, ETH_HLEN + IP6_HLEN + plen, 0) < 0)
		return drop(C_MALFORMED);
	if (set_ethertype(skb, ETH_P_IPV6) < 0 || STORE(skb, ETH_HLEN, &outer, IP6_HLEN) < 0 ||
	    STORE(skb, ETH_HLEN + IP6_HLEN, icmp, 8) < 0 ||
	    STORE(skb, ETH_HLEN + IP6_HLEN + 8, &inner, IP6_HLEN) < 0)
		return drop(C_MALFORMED);
	__u32 sum = pseudo6_sum(s6, host6, plen, IPPROTO_ICMPV6_);
	if (csum_skb(skb, ETH_HLEN + IP6_HLEN, plen, &sum) < 0)
		return drop(C_MALFORMED);
	__u16 c = csum_fold(sum);
	STORE(skb, ETH_HLEN + IP6_HLEN + 2, &c, 2);
	count(C_ICMP_ERR);
	count(C_XLAT_46);
	return XLAT_FORWARD;
}

__noinline int xlat46(struct __sk_buff *skb, const struct config *cfg, struct iphdr *ip,
			     struct l4 *lp)
{
	if (!cfg || !ip || !lp)
		return TC_ACT_SHOT;
	__u32 hlen = ip->ihl & 0xf;
	if (hlen < 5)
		return drop(C_MALFORMED);
	hlen *= 4;
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen || tot > skb->len - ETH_HLEN)
		return drop(C_MALFORMED);
	if (tot < skb->len - ETH_HLEN && !skb->gso_size && bpf_skb_change_tail(skb, ETH_HLEN + tot, 0) < 0)
		return drop(C_MALFORMED);
	/* The stack is bypassed, so its header checksum check too. */
	__u32 hsum = 0;
	if (csum_skb(skb, ETH_HLEN, hlen, &hsum) < 0 || csum_fold(hsum) != 0)
		return drop(C_MALFORMED);
	__u8 proto = ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) {
		count(C_TO_STACK);
		return TC_ACT_OK;
	}
	/* Hairpinned packets come from our own pool address (RFC 6146 §3.8);
	 * their TTL was already decremented on the way in. */
	int hairpin = ip->saddr == cfg->pool4;
	__u16 fo = bpf_ntohs(ip->frag_off);
	__u32 foff = (fo & 0x1fff) * 8;
	int mf = (fo & 0x2000) != 0;
	int df = (fo & 0x4000) != 0;
	int is_frag = mf || foff;
	__u32 l4_off = ETH_HLEN + hlen;
	__u32 l4len = tot - hlen;
	__u64 now = now_ns(cfg);

	__u8 host6[16];
	__be16 port6 = 0;
	struct sess_val *s = 0;

	if (foff) {
		struct frag4_key fk = {.src = ip->saddr, .id = ip->id, .proto = proto};
		struct frag4_val *fv = bpf_map_lookup_elem(&nat64_frag4, &fk);
		if (!fv)
			return drop(C_FRAG_NO_STATE);
		__builtin_memcpy(host6, fv->addr6, 16);
		if (proto == IPPROTO_ICMP)
			return drop(C_UNSUPPORTED);
	} else {
		if (load_l4(skb, l4_off, proto, lp) < 0)
			return drop(C_MALFORMED);
		if (proto == IPPROTO_ICMP) {
			if (lp->type == 3 || lp->type == 11 || lp->type == 12) {
				if (is_frag)
					return drop(C_UNSUPPORTED);
				if (!hairpin && ip->ttl <= 1) {
					count(C_TTL_EXPIRED);
					lp->type = 11;
					lp->code = 0;
					lp->info = 0;
					return XLAT_REPLY;
				}
				return XLAT_ICMP_ERR;
			}
			if (lp->type != 0 && lp->type != 8) {
				count(C_TO_STACK);
				return TC_ACT_OK;
			}
			if (is_frag)
				return drop(C_UNSUPPORTED);
		}
		struct bib4_key bk = {.port4 = lp->dport, .proto = proto};
		struct bib4_val *b = bpf_map_lookup_elem(&nat64_bib4, &bk);
		if (!b) {
			/* Echo requests without a binding are for the router. */
			/* Local sockets, the firewall's NAT44, or a port
			 * unreachable from the kernel (RFC 6146 §3.5.2.2). */
			count(C_NO_SESSION);
			count(C_TO_STACK);
			return TC_ACT_OK;
		}
		__builtin_memcpy(host6, b->addr, 16);
		port6 = b->port;
		struct sess_key sk = {.addr4 = ip->saddr, .port6 = port6, .proto = proto};
		if (proto != IPPROTO_ICMP)
			sk.port4 = lp->sport;
		__builtin_memcpy(sk.addr6, host6, 16);
		s = bpf_map_lookup_elem(&nat64_sess, &sk);
		if (!s) {
			/* Address-dependent filtering: a remote the binding
			 * already talks to may open a new session from another
			 * port. TCP only with a SYN; unsolicited SYNs to a
			 * binding without that remote are dropped instead of
			 * held for 6 s (RFC 6146 §3.5.2.2 allows either). */
			struct adf_key ak = {.addr4 = ip->saddr, .port4 = lp->dport, .proto = proto};
			/* A static binding is an explicit invitation from the
			 * IPv4 side (a port forward): no filtering. */
			int open = (b->flags & BIB_STATIC) || bpf_map_lookup_elem(&nat64_adf, &ak);
			if (!open || (proto == IPPROTO_ICMP && lp->type != 8))
				return drop(C_FILTERED);
			if (proto == IPPROTO_TCP && !(lp->flags & TCPF_SYN))
				return drop(C_FILTERED);
			struct sess_val nv = {.last_ns = now, .pool_port = lp->dport};
			if (proto == IPPROTO_TCP)
				nv.state = TCP_V4_INIT;
			long err = bpf_map_update_elem(&nat64_sess, &sk, &nv, BPF_NOEXIST);
			if (err && err != -EEXIST)
				return drop(C_TABLE_FULL);
			s = bpf_map_lookup_elem(&nat64_sess, &sk);
			if (!s)
				return drop(C_TABLE_FULL);
			bpf_map_update_elem(&nat64_adf, &ak, &now, BPF_ANY);
			host_created(host6);
		}
		if (proto == IPPROTO_TCP)
			tcp_track(s, lp->flags, 0);
		sess_touch(s, now);
	}

	if (!hairpin && ip->ttl <= 1) {
		count(C_TTL_EXPIRED);
		lp->type = 11;
		lp->code = 0;
		lp->info = 0;
		return XLAT_REPLY;
	}

	__u32 plen = l4len + (is_frag ? 8 : 0);
	if (!skb->gso_size && plen + IP6_HLEN > cfg->lan_mtu) {
		if (df) {
			/* RFC 7915 §4: fragmentation needed, MTU minus 20. */
			count(C_TOO_BIG);
			lp->type = 3;
			lp->code = 4;
			lp->info = cfg->lan_mtu - 20;
			return XLAT_REPLY;
		}
		/* Splitting one skb into IPv6 fragments is not possible
		 * from tc; senders of big DF=0 packets are rare (TCP and
		 * QUIC set DF). Dropped and counted. */
		return drop(C_NEEDS_FRAG);
	}

	__u8 src6[16];
	embed4(cfg, ip->saddr, src6);

	if (foff == 0) {
		__u32 csum_at = l4_off + lp->csum_off;
		if (proto == IPPROTO_ICMP) {
			__u8 ot[2] = {lp->type, lp->code}, nt[2] = {lp->type == 8 ? 128 : 129, lp->code};
			__u16 o16, n16, c;
			__builtin_memcpy(&o16, ot, 2);
			__builtin_memcpy(&n16, nt, 2);
			if (bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
				return drop(C_MALFORMED);
			__u32 d = pseudo6_sum(src6, host6, l4len, IPPROTO_ICMPV6_);
			__u32 acc = (__u16)~c;
			acc += (d & 0xffff) + (d >> 16);
			acc += (__u16)~o16;
			acc += n16;
			acc += (__u16)~lp->dport;
			acc += port6;
			c = csum_fold(acc);
			if (STORE(skb, l4_off, nt, 2) < 0 || STORE(skb, csum_at, &c, 2) < 0 ||
			    STORE(skb, l4_off + 4, &port6, 2) < 0)
				return drop(C_MALFORMED);
		} else {
			__u16 c = 1;
			if (proto == IPPROTO_UDP && bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
				return drop(C_MALFORMED);
			if (c == 0) {
				/* RFC 7915 §4.5: IPv6 needs a UDP checksum;
				 * computed after the header swap below. */
				if (is_frag)
					return drop(C_UNSUPPORTED);
				if (STORE(skb, l4_off + 2, &port6, 2) < 0)
					return drop(C_MALFORMED);
			} else {
				__u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
				__be32 oa[2] = {ip->saddr, ip->daddr};
				__u8 na[32];
				__builtin_memcpy(na, src6, 16);
				__builtin_memcpy(na + 16, host6, 16);
				__u32 d = bpf_csum_diff(oa, 8, (__be32 *)na, 32, 0);
				if (bpf_l4_csum_replace(skb, csum_at, 0, d, BPF_F_PSEUDO_HDR | mangled) < 0 ||
				    bpf_l4_csum_replace(skb, csum_at, lp->dport, port6, 2 | mangled) < 0 ||
				    STORE(skb, l4_off + 2, &port6, 2) < 0)
					return drop(C_MALFORMED);
			}
		}
		if (mf) {
			struct frag4_key fk = {.src = ip->saddr, .id = ip->id, .proto = proto};
			struct frag4_val fv = {.port6 = port6};
			__builtin_memcpy(fv.addr6, host6, 16);
			bpf_map_update_elem(&nat64_frag4, &fk, &fv, BPF_ANY);
		}
	}

	struct ipv6hdr ip6 = {};
	ip6.version = 6;
	ip6.priority = ip->tos >> 4;
	ip6.flow_lbl[0] = ip->tos << 4;
	ip6.payload_len = bpf_htons(plen);
	ip6.nexthdr = is_frag ? NEXTHDR_FRAGMENT : (proto == IPPROTO_ICMP ? IPPROTO_ICMPV6_ : proto);
	ip6.hop_limit = hairpin ? ip->ttl : ip->ttl - 1;
	__builtin_memcpy(&ip6.saddr, src6, 16);
	__builtin_memcpy(&ip6.daddr, host6, 16);

	__u32 bytes = skb->len - ETH_HLEN;
	if (hlen > IP4_HLEN && bpf_skb_adjust_room(skb, -(__s32)(hlen - IP4_HLEN), BPF_ADJ_ROOM_NET, 0) < 0)
		return drop(C_MALFORMED);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0) < 0)
		return drop(C_MALFORMED);
	if (set_ethertype(skb, ETH_P_IPV6) < 0 || STORE(skb, ETH_HLEN, &ip6, IP6_HLEN) < 0)
		return drop(C_MALFORMED);
	if (is_frag) {
		/* RFC 7915 §4.1: IPv4 fragments keep their identity in an
		 * IPv6 fragment header. */
		if (bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0) < 0)
			return drop(C_MALFORMED);
		__u8 fh[8] = {proto == IPPROTO_ICMP ? IPPROTO_ICMPV6_ : proto, 0};
		__u16 f = (foff & 0xfff8) | (mf ? 1 : 0);
		fh[2] = f >> 8;
		fh[3] = f & 0xff;
		fh[6] = bpf_ntohs(ip->id) >> 8;
		fh[7] = bpf_ntohs(ip->id) & 0xff;
		if (STORE(skb, ETH_HLEN + IP6_HLEN, fh, 8) < 0)
			return drop(C_MALFORMED);
	} else if (proto == IPPROTO_UDP && foff == 0) {
		__u16 c;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + IP6_HLEN + 6, &c, 2) < 0)
			return drop(C_MALFORMED);
		if (c == 0) {
			__u32 sum = pseudo6_sum(src6, host6, l4len, IPPROTO_UDP);
			if (csum_skb(skb, ETH_HLEN + IP6_HLEN, l4len, &sum) < 0)
				return drop(C_UNSUPPORTED);
			c = csum_fold(sum);
			if (c == 0)
				c = 0xffff;
			if (STORE(skb, ETH_HLEN + IP6_HLEN + 6, &c, 2) < 0)
				return drop(C_MALFORMED);
		}
	}
	host_account(host6, bytes, 0);
	count(C_XLAT_46);
	return XLAT_FORWARD;
}

SEC("tc")
int nat64_wan(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&nat64_config, &zero);
	if (!cfg || !cfg->pool4)
		return TC_ACT_OK;
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, IP4_HLEN) < 0)
		return TC_ACT_OK;
	if (ip.version != 4 || ip.daddr != cfg->pool4)
		return TC_ACT_OK;
	struct l4 l = {};
	int r = xlat46(skb, cfg, &ip, &l);
	if (r == XLAT_ICMP_ERR)
		r = xlat_icmp4_err(skb, cfg, &ip, &l);
	else if (r == XLAT_REPLY)
		return icmp4_reply(skb, cfg, &ip, ((__u32)l.type << 8) | l.code, l.info);
	if (r == XLAT_FORWARD)
		return forward(skb, cfg, 1);
	return r;
}
