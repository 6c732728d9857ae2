// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The gizmo's CLAT (RFC 6877, the customer side of 464XLAT): stateless
 * RFC 7915 translation between one IPv4 address and one IPv6 address, as
 * two tc programs attached with tcx:
 *
 *   clat_out on clat0 egress:    IPv4 from the CLAT's IPv4 address (the
 *     kernel's NAT44 mapped the legacy hosts to it) -> IPv6 from the CLAT's
 *     IPv6 address to PREF64 + the IPv4 destination (RFC 6052), redirected
 *     out of uplink0 towards the ISP's NAT64.
 *   clat_in on uplink0 ingress:  IPv6 from PREF64 to the CLAT's IPv6
 *     address -> IPv4 to the CLAT's IPv4 address, handed to the stack as
 *     if it had arrived so (TC_ACT_OK): conntrack reverses the NAT44 and
 *     the firewall sees a reply from the WAN, as for native IPv4.
 *
 * The kernel does the router's part on the IPv4 side before and after:
 * TTL, fragmentation or Fragmentation Needed against clat0's MTU, ICMP
 * errors, conntrack and the firewall, and its unreachable routes keep the
 * legacy hosts from non-global IPv4 destinations under the well-known
 * prefix (RFC 6052 §3.1) with an ICMP error; no flow to one can exist, so
 * the firewall drops anything from one as unsolicited. What reaches clat_out has been
 * forwarded or sent by the gizmo itself; what clat_in passes on is routed
 * like any IPv4 packet from the WAN.
 *
 * The program is built from the NAT64's headers (services/nat64/bpf,
 * included read-only): its configuration struct and counters, the
 * checksum helpers, the length checks and the IPv6 extension header walk,
 * the RFC 7915 ICMP type and code maps, the headers that take the other
 * version's place (hdr.h), the reading of an ICMP error's quoted packet
 * and the rewriting of a translated error's headers (icmp_err.h), the
 * RFC 6052 address embedding and MSS clamping. The NAT64's own
 * translators (xlat46.h, xlat64.h) keep RFC 6146 sessions and are not
 * used. In the NAT64's terms the CLAT's IPv6 side is "lan" and its
 * IPv4 side "wan":
 *
 *   config.pool4        the CLAT's IPv4 address (192.0.0.4)
 *   config.router6      the CLAT's IPv6 address
 *   config.lan_ifindex  uplink0, where translated IPv6 leaves; lan_mtu its MTU
 *   config.wan_ifindex  clat0; wan_mtu its MTU
 *   config.pref64*      the ISP's NAT64 prefix
 *
 * Addresses are handed to the NAT64's helpers as void pointers, which C
 * converts to whatever address type they take.
 *
 * As in the NAT64, no function that takes the skb is global: the target
 * kernels have no BTF to check a global function's context argument with.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../../nat64/bpf/nat64.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#include "../../nat64/bpf/maps.h"
#include "../../nat64/bpf/csum.h"
#include "../../nat64/bpf/addr.h"
#include "../../nat64/bpf/parse.h"
#include "../../nat64/bpf/hdr.h"
#include "../../nat64/bpf/mss.h"
#include "../../nat64/bpf/icmp_err.h"
#include "../../../internal/bpfhdr/config.h"
#include "../../../internal/bpfhdr/fib6.h"

CONFIG_MAP(clat_config, struct config);

/* RFC 7600: 192.0.0.8, the IPv4 dummy address. An ICMPv6 error from a
 * router between the gizmo and the NAT64 has no IPv4 form; it is
 * translated with this source (RFC 6791), so that traceroute still works. */
#define DUMMY4 bpf_htonl(0xc0000008)

/* icmp_type_csum adjusts the checksum at csum_at for an ICMP type change
 * between ICMPv4 and ICMPv6 (RFC 7915 §4.2, §5.2): the ICMPv6 checksum
 * covers a pseudo-header, the ICMPv4 one does not. pseudo is the
 * pseudo-header's partial sum; to6 adds it, else it is taken out. */
static __always_inline int icmp_type_csum(struct __sk_buff *skb, __u32 csum_at, __u8 ot, __u8 nt, __u8 code,
					  __u32 pseudo, int to6)
{
	__u8 o[2] = {ot, code}, n[2] = {nt, code};
	__u16 o16, n16, c;
	__builtin_memcpy(&o16, o, 2);
	__builtin_memcpy(&n16, n, 2);
	if (bpf_skb_load_bytes(skb, csum_at, &c, 2) < 0)
		return -1;
	__u32 acc = (__u16)~c;
	if (to6)
		acc += (pseudo & 0xffff) + (pseudo >> 16);
	else
		acc += csum_fold(pseudo); /* the complement of a sum subtracts it */
	acc += (__u16)~o16;
	acc += n16;
	c = csum_fold(acc);
	return STORE(skb, csum_at, &c, 2);
}

#include "xlat_out.h"
#include "xlat_in.h"

/* out6 sends a packet translated to IPv6 out of uplink0, to the next hop
 * from the FIB (the ISP's router). */
static __noinline int out6(struct __sk_buff *skb, const struct config *cfg)
{
	if (!cfg)
		return TC_ACT_SHOT;
	if (cfg->flags & F_NO_FIB)
		return bpf_redirect(cfg->lan_ifindex, 0);
	struct bpf_fib_lookup fib = {};
	fib.ifindex = cfg->lan_ifindex;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, fib.ipv6_src, 32) < 0)
		return drop(C_MALFORMED);
	long rc = fib6_eth(skb, &fib);
	if (rc < 0)
		return drop(C_MALFORMED);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return bpf_redirect(fib.ifindex, 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return fib6_redirect_neigh(&fib);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		/* clat0's MTU leaves room for the translation; a packet too
		 * big here means uplink0's MTU fell below the plan's. */
		return drop(C_NEEDS_FRAG);
	return drop(C_NO_ROUTE);
}

SEC("tc")
int clat_out(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	struct config *cfg = config_of(&clat_config);
	if (!cfg || !cfg->pool4)
		/* No NAT64 to send it to: clat0 leads nowhere. */
		return drop(C_NO_ROUTE);
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, IP4_HLEN) < 0)
		return drop(C_MALFORMED);
	/* The steps are separate static functions, so that no call chain
	 * needs more than the 512 bytes of BPF stack. */
	struct l4 l = {};
	int r = xlat_out(skb, cfg, &ip, &l);
	if (r == XLAT_ICMP_ERR)
		r = xlat_out_icmp_err(skb, cfg, &ip, &l);
	if (r == XLAT_FORWARD)
		return out6(skb, cfg);
	return r;
}

SEC("tc")
int clat_in(struct __sk_buff *skb)
{
	struct config *cfg = config_for(skb, ETH_P_IPV6, &clat_config);
	if (!cfg || !cfg->pool4)
		return TC_ACT_UNSPEC;
	struct ipv6hdr ip6;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, IP6_HLEN) < 0)
		return TC_ACT_UNSPEC;
	__u32 d[4], c[4];
	__builtin_memcpy(d, &ip6.daddr, 16);
	__builtin_memcpy(c, cfg->router6, 16);
	if (ip6.version != 6 || d[0] != c[0] || d[1] != c[1] || d[2] != c[2] || d[3] != c[3])
		return TC_ACT_UNSPEC;
	struct in x = {};
	int r = xlat_in(skb, cfg, &ip6, &x);
	if (r == XLAT_ICMP_ERR)
		r = xlat_in_icmp_err(skb, cfg, &ip6, &x.e, &x.l);
	return r;
}
