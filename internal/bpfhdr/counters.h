/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters, as the Go side reads them (bpfobj.Counters): one __u64
 * slot per counter in a per-CPU array, which each CPU adds to without
 * atomics. Included after <bpf/bpf_helpers.h>.
 */
#ifndef GIZMO_BPFHDR_COUNTERS_H
#define GIZMO_BPFHDR_COUNTERS_H

#include <linux/bpf.h>
#include <linux/types.h>

/* COUNTERS_MAP declares a counter array with n slots. */
#define COUNTERS_MAP(name, n) \
	struct { \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, n); \
		__type(key, __u32); \
		__type(value, __u64); \
	} name SEC(".maps")

/* counter_add adds n to counter c in map. */
static __always_inline void counter_add(void *map, __u32 c, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &c);
	if (v)
		*v += n;
}

#endif
