/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The NAT64's configuration and state: bindings and sessions (RFC 6146
 * §3.1), fragments, quotas, rate limits and statistics. Part of nat64.c;
 * needs maps.h. The CLAT, which shares maps.h, keeps no state and leaves
 * these out. */
#ifndef GIZMO_NAT64_TABLES_H
#define GIZMO_NAT64_TABLES_H

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

/* Live sessions per quota slot (quota.h). Arrays never fill, and both
 * sides count with atomic adds: the program when it opens a session, the
 * Go reaper (through the mmapped values) when it removes one. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, Q128_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_quota128 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, Q64_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_quota64 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, QMAC_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_quotamac SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, QBIND_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_quotabind SEC(".maps");

/* ICMP error rate limit, one bucket per direction (ICMP_TO_LAN,
 * ICMP_TO_WAN): the theoretical arrival time of the next error (GCRA). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} nat64_icmp_rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct lpm6_key);
	__type(value, struct host_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat64_hstats SEC(".maps");

#endif
