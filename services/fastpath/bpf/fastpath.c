// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A software flowtable for native IPv6 forwarding, the idea of the kernel's
 * nftables flowtable (CONFIG_NF_FLOW_TABLE, off in gokrazy's kernels) done
 * with four tcx programs:
 *
 *   fp_learn_wan on uplink0 egress: LAN->WAN packets the stack forwarded
 *   fp_learn_lan on lan0 egress:    WAN->LAN packets the stack forwarded
 *   fp_lan on lan0 ingress:         LAN->WAN packets of offloaded flows
 *   fp_wan on uplink0 ingress:      WAN->LAN packets of offloaded flows
 *
 * tc egress runs after netfilter's postrouting hook, so a packet the
 * learners see has been accepted by the firewall's forward chain. A flow is
 * offloaded when both directions were seen there (conntrack established);
 * its packets then skip the stack: bpf_fib_lookup, hop limit - 1,
 * bpf_redirect_neigh. Everything else returns TC_ACT_UNSPEC (TCX_NEXT), so
 * that the next program on the hook (the NAT64) and then the kernel get it.
 *
 * Every direction of a flow goes back through the stack for one packet once
 * its last stack-accepted packet is older than refresh_ns: conntrack stays
 * alive, and a flow the firewall stops accepting (a flushed conntrack entry,
 * an invalid state) leaves the fast path within refresh_ns.
 *
 * UAPI headers only, no CO-RE, no global functions: the target kernels have
 * no BTF and no JIT (the same rules as services/nat64).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../../../internal/bpfhdr/config.h"
#include "../../../internal/bpfhdr/counters.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#define ETH_HLEN 14
#define AF_INET6 10
#define IPPROTO_ICMPV6_ 58
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10
#define IPV6_MIN_MTU 1280

#define MAX_PREFIXES 8
#define MAX_EXCLUDE 2

/* config.flags */
#define F_NO_FIB 1 /* tests: no bpf_fib_lookup, bpf_redirect to the other interface */

/* flow_val.flags */
#define SEEN_OUT 1 /* a LAN->WAN packet passed the firewall */
#define SEEN_IN 2  /* a WAN->LAN packet passed the firewall */
#define CLOSING 4  /* TCP FIN or RST seen: the stack handles the rest */

/* Directions: DIR_OUT is LAN->WAN, DIR_IN is WAN->LAN. */
#define DIR_OUT 0
#define DIR_IN 1

struct prefix6 {
	__u64 addr[2]; /* masked, network byte order as loaded */
	__u64 mask[2];
};

struct config {
	__u32 enabled;
	__u32 lan_ifindex;
	__u32 wan_ifindex;
	__u32 mark; /* skb->mark bit on fast-pathed packets, cleared at egress */
	__u32 flags;
	__u32 nprefixes;
	/* The clock: CLOCK_BOOTTIME, written by Go every second. Reading
	 * the clock per packet costs more than everything else but the FIB
	 * lookup in a VM (kvm-clock), and the timeouts need no more. */
	__u64 now_ns;
	__u64 udp_timeout_ns;
	__u64 tcp_timeout_ns;
	__u64 icmp_timeout_ns;
	__u64 closing_timeout_ns;
	__u64 refresh_ns;
	struct prefix6 prefixes[MAX_PREFIXES];
	/* Remote prefixes never learned: the NAT64 prefix, whose replies
	 * leave lan0 as IPv6 while the other direction leaves as IPv4. */
	__u32 nexclude;
	__u32 pad;
	struct prefix6 exclude[MAX_EXCLUDE];
};

/* A flow, always written from the LAN side: lan is the LAN host's address.
 * For ICMPv6 echo, lport is the identifier and rport 0. */
struct flow_key {
	__u8 lan[16] __attribute__((aligned(8))); /* copied and compared as words */
	__u8 remote[16];
	__u16 lport;
	__u16 rport;
	__u8 proto;
	__u8 pad[3];
};

/* The route of one direction, as bpf_fib_lookup found it at fib_ns. */
struct hop {
	__u64 fib_ns; /* 0: none yet */
	__u32 ifindex;
	__u32 nh[4]; /* next hop */
	__u32 pad;
};

struct flow_val {
	__u64 last_ns;    /* last packet either way (config.now_ns) */
	__u64 seen_ns[2]; /* last packet the stack accepted, per direction */
	__u32 flags;
	__u32 pad;
	struct hop hop[2]; /* per direction */
};

/* Bytes and packets of one LAN address on the fast path. */
struct host_stats {
	__u64 out_bytes;
	__u64 out_packets;
	__u64 in_bytes;
	__u64 in_packets;
};

/* Global counters (per CPU). C_FAST_* are fast-pathed; S_* were handed to
 * the stack, by reason; L_* are what the learners did. */
enum {
	C_FAST_PACKETS,
	C_FAST_BYTES,
	S_NOT_IPV6,
	S_SHORT,
	S_NEXT_HEADER, /* extension header or a protocol the table does not hold */
	S_HOP_LIMIT,
	S_NOT_LAN, /* addresses are not LAN host <-> outside */
	S_NO_FLOW,
	S_HALF_OPEN, /* only one direction accepted so far */
	S_REFRESH,
	S_EXPIRED,
	S_TCP_CLOSE, /* FIN, RST or SYN on an offloaded flow */
	S_CLOSING,
	S_FRAG_NEEDED,
	S_FIB,   /* bpf_fib_lookup did not return success */
	S_ROUTE, /* the route leads out of another interface */
	S_EXCLUDED, /* the remote is in an excluded prefix */
	L_LEARNED,
	L_FLOW_FULL,
	L_HOST_FULL,
	N_COUNTERS,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} fp_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} fp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct in6_addr);
	__type(value, struct host_stats);
} fp_hosts SEC(".maps");

COUNTERS_MAP(fp_counters, N_COUNTERS);

static __always_inline void count(__u32 c, __u64 n)
{
	counter_add(&fp_counters, c, n);
}

static __always_inline int to_stack(__u32 reason)
{
	count(reason, 1);
	return TC_ACT_UNSPEC;
}

static __always_inline int in_lan(const struct config *cfg, const __u8 *a)
{
	__u64 hi = *(const __u64 *)a, lo = *(const __u64 *)(a + 8);
#pragma unroll
	for (int i = 0; i < MAX_PREFIXES; i++) {
		if (i >= cfg->nprefixes)
			break;
		const struct prefix6 *p = &cfg->prefixes[i];
		if ((hi & p->mask[0]) == p->addr[0] && (lo & p->mask[1]) == p->addr[1])
			return 1;
	}
	return 0;
}

static __always_inline int excluded(const struct config *cfg, const __u8 *a)
{
	__u64 hi = *(const __u64 *)a, lo = *(const __u64 *)(a + 8);
#pragma unroll
	for (int i = 0; i < MAX_EXCLUDE; i++) {
		if (i >= cfg->nexclude)
			break;
		const struct prefix6 *p = &cfg->exclude[i];
		if ((hi & p->mask[0]) == p->addr[0] && (lo & p->mask[1]) == p->addr[1])
			return 1;
	}
	return 0;
}

static __always_inline __u64 timeout(const struct config *cfg, const struct flow_key *k, const struct flow_val *v)
{
	if (v->flags & CLOSING)
		return cfg->closing_timeout_ns;
	if (k->proto == IPPROTO_TCP)
		return cfg->tcp_timeout_ns;
	if (k->proto == IPPROTO_UDP)
		return cfg->udp_timeout_ns;
	return cfg->icmp_timeout_ns;
}

/* parsed is what both kinds of program read from a packet. */
struct parsed {
	struct ipv6hdr *ip6;
	__u8 tcp_flags;
};

/* parse fills the key from the packet seen in direction dir. It returns a
 * stack reason, or -1 when the packet can be in the table. */
static __always_inline int parse(struct __sk_buff *skb, const struct config *cfg, int dir,
				 struct flow_key *k, struct parsed *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if ((void *)(ip6 + 1) > end)
		return S_SHORT;
	if (ip6->version != 6)
		return S_NEXT_HEADER;
	__u8 *l4 = (__u8 *)(ip6 + 1);
	k->proto = ip6->nexthdr;
	/* Extension headers go to the stack: they are rare, and some
	 * (hop-by-hop, routing) ask the router to act. */
	switch (ip6->nexthdr) {
	case IPPROTO_TCP:
		if (l4 + 14 > (__u8 *)end)
			return S_SHORT;
		p->tcp_flags = l4[13];
		break;
	case IPPROTO_UDP:
		if (l4 + 4 > (__u8 *)end)
			return S_SHORT;
		break;
	case IPPROTO_ICMPV6_:
		if (l4 + 6 > (__u8 *)end)
			return S_SHORT;
		/* Errors are RELATED in conntrack and rare: the stack's. */
		if (l4[0] != ICMP6_ECHO_REQUEST && l4[0] != ICMP6_ECHO_REPLY)
			return S_NEXT_HEADER;
		break;
	default:
		return S_NEXT_HEADER;
	}
	__u16 sport = *(__u16 *)l4, dport = *(__u16 *)(l4 + 2);
	if (ip6->nexthdr == IPPROTO_ICMPV6_) {
		sport = *(__u16 *)(l4 + 4); /* echo identifier */
		dport = 0;
	}
	/* struct in6_addr, not a byte pointer: clang copies what it cannot
	 * prove aligned a byte at a time, and without a JIT the interpreter
	 * pays for every one of those instructions. */
	const struct in6_addr *src = &ip6->saddr, *dst = &ip6->daddr;
	if (dir == DIR_OUT) {
		__builtin_memcpy(k->lan, src, 16);
		__builtin_memcpy(k->remote, dst, 16);
		k->lport = sport;
		k->rport = dport;
	} else {
		__builtin_memcpy(k->lan, dst, 16);
		__builtin_memcpy(k->remote, src, 16);
		k->lport = dport;
		k->rport = sport;
	}
	if (ip6->nexthdr == IPPROTO_ICMPV6_) {
		k->lport = sport;
		k->rport = 0;
	}
	/* Only LAN host <-> outside: router-originated traffic and spoofed
	 * sources (a WAN packet claiming a LAN source) never form a key that
	 * the learners could have written. */
	if (!in_lan(cfg, k->lan) || in_lan(cfg, k->remote))
		return S_NOT_LAN;
	if (excluded(cfg, k->remote))
		return S_EXCLUDED;
	p->ip6 = ip6;
	return -1;
}

static __always_inline int fastpath(struct __sk_buff *skb, int dir)
{
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return to_stack(S_NOT_IPV6);
	struct config *cfg = config_of(&fp_config);
	if (!cfg || !cfg->enabled)
		return TC_ACT_UNSPEC;
	struct flow_key k = {};
	struct parsed p = {};
	int r = parse(skb, cfg, dir, &k, &p);
	if (r >= 0)
		return to_stack(r);
	if (p.ip6->hop_limit <= 1)
		return to_stack(S_HOP_LIMIT); /* the kernel sends Time Exceeded */
	struct flow_val *v = bpf_map_lookup_elem(&fp_flows, &k);
	if (!v)
		return to_stack(S_NO_FLOW);
	__u64 t = cfg->now_ns;
	if (t - v->last_ns > timeout(cfg, &k, v)) {
		bpf_map_delete_elem(&fp_flows, &k);
		return to_stack(S_EXPIRED);
	}
	if (v->flags & CLOSING)
		return to_stack(S_CLOSING);
	if ((v->flags & (SEEN_OUT | SEEN_IN)) != (SEEN_OUT | SEEN_IN))
		return to_stack(S_HALF_OPEN);
	if (k.proto == IPPROTO_TCP && (p.tcp_flags & (TCPF_FIN | TCPF_RST | TCPF_SYN))) {
		/* conntrack must see the close (and any new handshake) */
		v->flags |= CLOSING;
		v->last_ns = t;
		return to_stack(S_TCP_CLOSE);
	}
	if (t - v->seen_ns[dir & 1] > cfg->refresh_ns)
		return to_stack(S_REFRESH);

	__u32 out_ifindex = dir == DIR_OUT ? cfg->wan_ifindex : cfg->lan_ifindex;
	struct bpf_redir_neigh nh = {.nh_family = AF_INET6};
	struct hop *hp = &v->hop[dir & 1];
	__u32 l3len = skb->len - ETH_HLEN;
	/* The route found in this clock second serves packets that fit
	 * every IPv6 link (RFC 8200 §5: 1280 bytes) and are not GSO: for
	 * them the lookup could only repeat itself. Bigger packets get
	 * their own lookup, which checks them against the MTU. */
	if (hp->fib_ns == t && hp->ifindex == out_ifindex && l3len <= IPV6_MIN_MTU && skb->gso_segs <= 1) {
		__builtin_memcpy(nh.ipv6_nh, hp->nh, 16);
	} else if (!(cfg->flags & F_NO_FIB)) {
		struct bpf_fib_lookup fib = {};
		fib.family = AF_INET6;
		fib.l4_protocol = k.proto;
		fib.flowinfo = *(__be32 *)p.ip6 & bpf_htonl(0x0fffffff);
		__builtin_memcpy(fib.ipv6_src, &p.ip6->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &p.ip6->daddr, 16);
		fib.ifindex = skb->ingress_ifindex;
		/* tot_len 0: the helper checks the skb against the egress
		 * MTU itself, GSO packets included. */
		long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
		if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
			return to_stack(S_FRAG_NEEDED); /* the kernel sends the PTB */
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return to_stack(S_FIB);
		if (fib.ifindex != out_ifindex)
			return to_stack(S_ROUTE);
		__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
		/* Racing CPUs write the same lookup's result. */
		__builtin_memcpy(hp->nh, fib.ipv6_dst, 16);
		hp->ifindex = fib.ifindex;
		hp->fib_ns = t;
	}
	/* The packet pointers are still valid: bpf_fib_lookup does not
	 * change the packet. */
	p.ip6->hop_limit--;
	if (v->last_ns != t)
		v->last_ns = t;

	__u64 bytes = l3len;
	count(C_FAST_PACKETS, 1);
	count(C_FAST_BYTES, bytes);
	struct host_stats *h = bpf_map_lookup_elem(&fp_hosts, k.lan);
	if (!h) {
		struct host_stats zero_h = {};
		if (bpf_map_update_elem(&fp_hosts, k.lan, &zero_h, BPF_NOEXIST) < 0)
			count(L_HOST_FULL, 1);
		h = bpf_map_lookup_elem(&fp_hosts, k.lan);
	}
	if (h) {
		if (dir == DIR_OUT) {
			h->out_bytes += bytes;
			h->out_packets++;
		} else {
			h->in_bytes += bytes;
			h->in_packets++;
		}
	}
	/* The learner at the egress hook must not take this packet for one
	 * the firewall accepted. */
	skb->mark |= cfg->mark;
	if (cfg->flags & F_NO_FIB)
		return bpf_redirect(out_ifindex, 0);
	return bpf_redirect_neigh(out_ifindex, &nh, sizeof(nh), 0);
}

static __always_inline int learn(struct __sk_buff *skb, int dir)
{
	struct config *cfg = config_for(skb, ETH_P_IPV6, &fp_config);
	if (!cfg || !cfg->enabled)
		return TC_ACT_UNSPEC;
	if (cfg->mark && (skb->mark & cfg->mark)) {
		skb->mark &= ~cfg->mark; /* ours, from the fast path */
		return TC_ACT_UNSPEC;
	}
	/* Forwarded packets only: skb_iif is the interface the packet came
	 * in on, 0 for the router's own packets. */
	if (skb->ingress_ifindex != (dir == DIR_OUT ? cfg->lan_ifindex : cfg->wan_ifindex))
		return TC_ACT_UNSPEC;
	struct flow_key k = {};
	struct parsed p = {};
	if (parse(skb, cfg, dir, &k, &p) >= 0)
		return TC_ACT_UNSPEC;
	__u64 t = cfg->now_ns;
	__u32 bit = dir == DIR_OUT ? SEEN_OUT : SEEN_IN;
	struct flow_val *v = bpf_map_lookup_elem(&fp_flows, &k);
	if (k.proto == IPPROTO_TCP) {
		__u8 f = p.tcp_flags;
		if (f & (TCPF_FIN | TCPF_RST)) {
			if (v) {
				v->flags |= CLOSING;
				v->last_ns = t;
			}
			return TC_ACT_UNSPEC;
		}
		if (f & TCPF_SYN) {
			/* A new connection on this tuple starts afresh; the
			 * handshake itself is never offloaded. */
			if (v && !(f & TCPF_ACK))
				bpf_map_delete_elem(&fp_flows, &k);
			return TC_ACT_UNSPEC;
		}
		if (!(f & TCPF_ACK))
			return TC_ACT_UNSPEC;
	}
	if (!v) {
		struct flow_val nv = {.last_ns = t, .flags = bit};
		nv.seen_ns[dir & 1] = t;
		if (bpf_map_update_elem(&fp_flows, &k, &nv, BPF_NOEXIST) < 0)
			count(L_FLOW_FULL, 1);
		else
			count(L_LEARNED, 1);
		return TC_ACT_UNSPEC;
	}
	if (v->flags & CLOSING)
		return TC_ACT_UNSPEC;
	if (!(v->flags & bit)) {
		v->flags |= bit;
		count(L_LEARNED, 1);
	}
	/* Write only when the clock moved: flows the stack carries (one
	 * direction only, say) would otherwise dirty the entry per packet. */
	if (v->seen_ns[dir & 1] != t)
		v->seen_ns[dir & 1] = t;
	if (v->last_ns != t)
		v->last_ns = t;
	return TC_ACT_UNSPEC;
}

SEC("tc")
int fp_lan(struct __sk_buff *skb)
{
	return fastpath(skb, DIR_OUT);
}

SEC("tc")
int fp_wan(struct __sk_buff *skb)
{
	return fastpath(skb, DIR_IN);
}

SEC("tc")
int fp_learn_wan(struct __sk_buff *skb)
{
	return learn(skb, DIR_OUT);
}

SEC("tc")
int fp_learn_lan(struct __sk_buff *skb)
{
	return learn(skb, DIR_IN);
}
