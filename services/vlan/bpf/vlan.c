// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One port on one IEEE 802.1Q VLAN, as two tc programs attached with tcx at
 * the head of the port's hooks:
 *   vlan_egress:  every frame leaves tagged with the VID (priority 0, DEI 0);
 *   vlan_ingress: a frame tagged with the VID loses its tag and goes on to
 *                 the programs after this one and the stack; untagged frames
 *                 and frames of other VLANs are dropped, as a VLAN device
 *                 never sees them.
 *
 * The kernel keeps a frame's tag in the skb's metadata (vlan_present,
 * vlan_tci), whether the NIC stripped it or the core did on receive, and
 * bpf_skb_vlan_push/pop work on that metadata, which the driver or the core
 * writes into the frame on transmit.
 *
 * The VID comes from a one-entry array map that the loader writes before it
 * attaches the programs: the target kernels have no BTF, so neither global
 * variables nor CO-RE; UAPI headers only.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../../../internal/bpfhdr/counters.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* tcx verdicts (enum tcx_action_base; Debian's UAPI headers may predate it). */
#define TCX_NEXT -1
#define TCX_DROP 2

/* The VID sits in the low 12 bits of the TCI (IEEE 802.1Q §9.6); priority
 * and DEI do not decide which VLAN a frame is on. */
#define VID_MASK 0x0fff

/* Counters, one per-CPU slot each; the Go side (vlan.go) reads them by
 * these indexes. */
enum counter {
	C_RECEIVED = 0,     /* ingress: the tag matched and was removed */
	C_DROP_UNTAGGED,    /* ingress: no tag, dropped */
	C_DROP_OTHER_VLAN,  /* ingress: another VLAN's tag, dropped */
	C_SENT,             /* egress: tagged */
	C_DROP_TAGGED,      /* egress: the frame already carried a tag, dropped */
	C_FAILED,           /* a helper failed (no memory) or no VID, dropped */
	C_MAX,
};

/* The VID the port is on, in entry 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} vlan_config SEC(".maps");

COUNTERS_MAP(vlan_counters, C_MAX);

/* verdict counts the outcome c and returns ret. */
static __always_inline int verdict(__u32 c, int ret)
{
	counter_add(&vlan_counters, c, 1);
	return ret;
}

/* vid is the configured VID; 0 (no VID written) is not one a port can be on. */
static __always_inline __u32 vid(void)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&vlan_config, &zero);
	return v ? *v & VID_MASK : 0;
}

SEC("tc")
int vlan_ingress(struct __sk_buff *skb)
{
	__u32 id = vid();
	if (!id)
		return verdict(C_FAILED, TCX_DROP);
	if (!skb->vlan_present)
		return verdict(C_DROP_UNTAGGED, TCX_DROP);
	if ((skb->vlan_tci & VID_MASK) != id)
		return verdict(C_DROP_OTHER_VLAN, TCX_DROP);
	if (bpf_skb_vlan_pop(skb))
		return verdict(C_FAILED, TCX_DROP);
	return verdict(C_RECEIVED, TCX_NEXT);
}

/* A frame that already carries a tag has been tagged by someone else (a
 * program that redirected a tagged LAN frame): it does not belong on this
 * VLAN and is dropped. */
SEC("tc")
int vlan_egress(struct __sk_buff *skb)
{
	__u32 id = vid();
	if (!id)
		return verdict(C_FAILED, TCX_DROP);
	if (skb->vlan_present)
		return verdict(C_DROP_TAGGED, TCX_DROP);
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), id))
		return verdict(C_FAILED, TCX_DROP);
	return verdict(C_SENT, TCX_NEXT);
}
