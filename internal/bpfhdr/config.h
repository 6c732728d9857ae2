/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A program's configuration: one value at key 0 of a one-entry map, which
 * user space writes and the programs only read. Included after
 * <bpf/bpf_helpers.h> and <bpf/bpf_endian.h>.
 */
#ifndef GIZMO_BPFHDR_CONFIG_H
#define GIZMO_BPFHDR_CONFIG_H

#include <linux/bpf.h>
#include <linux/types.h>

/* CONFIG_MAP declares a configuration map for a value of type T: a hash
 * without preallocation, so that user space replaces the value as a whole
 * and a reader sees either the old or the new one (RCU), never the mix it
 * could see in an array's value written in place. No entry: the program
 * is off. */
#define CONFIG_MAP(name, T) \
	struct { \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, 1); \
		__type(key, __u32); \
		__type(value, T); \
		__uint(map_flags, BPF_F_NO_PREALLOC); \
	} name SEC(".maps")

/* config_of is the configuration in map, NULL when there is none. */
static __always_inline void *config_of(void *map)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(map, &zero);
}

/* config_for is the configuration in map for a packet of EtherType proto,
 * the kind a program translates: NULL for another, or when there is no
 * configuration. */
static __always_inline void *config_for(struct __sk_buff *skb, __u16 proto, void *map)
{
	if (skb->protocol != bpf_htons(proto))
		return NULL;
	return config_of(map);
}

#endif
