// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * Kernel drop reasons of packets packetlake saw: a tp_btf program on skb:kfree_skb, which the
 * kernel fires only for a packet it drops (a consumed one goes to skb:consume_skb instead:
 * SKB_CONSUMED never reaches this tracepoint), so a packet delivered costs nothing here.
 *
 * "Saw" is decided by the interface the skb came in on: (network namespace, ifindex) in
 * pl_drop_ifaces, the interfaces the collector attached its XDP/tcx program to. Every packet
 * received there went through that program first (it always passes them on), so this is exact
 * without a lookup in the flow tables: those are sampled by nothing but do retire idle flows,
 * and a per-flow marker would put a map write on every packet -- the cost this program exists
 * to avoid. Drops of packets that came in elsewhere, or were made on this host (skb_iif 0), are
 * counted per reason only, in pl_drops_unseen.
 *
 * Built without vmlinux.h: the few kernel structures read are declared below with
 * preserve_access_index, and the loader (cilium/ebpf) relocates their offsets against the
 * running kernel's BTF.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct skb_shared_info {
	unsigned short gso_segs;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	unsigned int len;
	int skb_iif;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	unsigned int end; /* sk_buff_data_t: an offset from head on 64-bit kernels */
	unsigned char *head;
	unsigned char *data;
} __attribute__((preserve_access_index));

/* What a drop is counted under: the reason and the flow, as pl_flow_key has it (addresses
 * IPv4-mapped for IPv4; ports 0 unless TCP or UDP, first fragment). */
struct pl_drop_key {
	__u32 reason; /* enum skb_drop_reason, as the kernel passed it */
	__u32 ifindex;
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__u16 src_port;
	__u16 dst_port;
	__u8 ip_proto;
	__u8 ip_version; /* 4, 6, or 0: not IP (then the addresses and ports are 0) */
	__u16 pad;
};

struct pl_drop_count {
	__u64 packets; /* wire packets: a GRO/GSO skb counts its segments */
	__u64 bytes;   /* from the MAC header on, as the skb held it when dropped */
};

struct pl_drop_iface {
	__u32 netns; /* inode number of the network namespace (/proc/self/ns/net) */
	__u32 ifindex;
};

enum pl_drop_stat {
	PL_DROP_SEEN = 0,   /* drops of packets received on an attached interface */
	PL_DROP_UNSEEN = 1, /* drops of other packets (per reason in pl_drops_unseen) */
	PL_DROP_FAILED = 2, /* seen drops that found pl_drops full: counted here only */
	PL_DROP_STATS = 3,
};

/* The interfaces packetlake observes; the collector fills it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct pl_drop_iface);
	__type(value, __u8);
} pl_drop_ifaces SEC(".maps");

/* Cumulative counts per reason and flow; max_entries is set by the loader (DropsConfig). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct pl_drop_key);
	__type(value, struct pl_drop_count);
} pl_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct pl_drop_count);
} pl_drops_unseen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_DROP_STATS);
	__type(key, __u32);
	__type(value, __u64);
} pl_drop_stats SEC(".maps");

static __always_inline void pl_drop_stat(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&pl_drop_stats, &i);

	if (v)
		*v += 1;
}

/* Adds one drop to m[key]; a percpu value is this CPU's alone (tracepoint programs do not nest
 * on a CPU), so plain adds are exact. Returns < 0 when the map had no room. */
static __always_inline int pl_drop_add(void *m, const void *key, __u64 packets, __u64 bytes)
{
	struct pl_drop_count *c = bpf_map_lookup_elem(m, key);

	if (!c) {
		struct pl_drop_count zero = {};

		/* BPF_NOEXIST: another CPU creating the same key first is fine, look it up again */
		bpf_map_update_elem(m, key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(m, key);
		if (!c)
			return -1;
	}
	c->packets += packets;
	c->bytes += bytes;
	return 0;
}

/* Fills the key's flow from the headers the skb holds: the network header the stack set, the
 * transport header after it (the transport offset may not be set yet where netfilter or the IP
 * layer drops, so it is found from the IP header). Reads go through bpf_probe_read_kernel: the
 * packet data is not ctx memory for a tracing program. */
static __always_inline void pl_drop_flow(struct pl_drop_key *k, struct sk_buff *skb)
{
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__be16 proto = skb->protocol;
	__u32 l4 = 0;
	__u8 ipp = 0;

	if (nh == (__u16)~0U)
		return;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return;
		k->ip_version = 4;
		k->src_addr[10] = 0xff;
		k->src_addr[11] = 0xff;
		k->dst_addr[10] = 0xff;
		k->dst_addr[11] = 0xff;
		__builtin_memcpy(&k->src_addr[12], &ip.saddr, 4);
		__builtin_memcpy(&k->dst_addr[12], &ip.daddr, 4);
		ipp = ip.protocol;
		if (!(ip.frag_off & bpf_htons(0x1fff))) /* ports only in a first fragment */
			l4 = nh + ip.ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return;
		k->ip_version = 6;
		__builtin_memcpy(k->src_addr, &ip6.saddr, 16);
		__builtin_memcpy(k->dst_addr, &ip6.daddr, 16);
		/* extension headers are not walked: their packets keep ports 0 */
		ipp = ip6.nexthdr;
		l4 = nh + sizeof(ip6);
	} else {
		return;
	}
	k->ip_proto = ipp;
	if (l4 && (ipp == IPPROTO_TCP || ipp == IPPROTO_UDP)) {
		__be16 ports[2];

		if (!bpf_probe_read_kernel(ports, sizeof(ports), head + l4)) {
			k->src_port = bpf_ntohs(ports[0]);
			k->dst_port = bpf_ntohs(ports[1]);
		}
	}
}

SEC("tp_btf/kfree_skb")
int pl_kfree_skb(__u64 *ctx)
{
	/* kfree_skb(skb, location, reason, rx_sk) */
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	__u32 reason = (__u32)ctx[2];
	struct pl_drop_iface iface = {};
	struct pl_drop_key k = {};
	__u64 packets = 1, bytes;
	__u16 start;
	long off;

	if (!skb)
		return 0;
	/* len counts from data, which the stack has pulled past the headers it handled (past IP by
	 * the time UDP drops); the frame starts at the MAC header, or else the network header. */
	start = skb->mac_header;
	if (start == (__u16)~0U)
		start = skb->network_header;
	bytes = skb->len;
	off = skb->data - (skb->head + start);
	if (start != (__u16)~0U && off > 0 && off < 4096)
		bytes += off;

	iface.ifindex = skb->skb_iif;
	if (iface.ifindex && skb->dev)
		iface.netns = skb->dev->nd_net.net->ns.inum;
	if (!iface.ifindex || !bpf_map_lookup_elem(&pl_drop_ifaces, &iface)) {
		pl_drop_stat(PL_DROP_UNSEEN);
		pl_drop_add(&pl_drops_unseen, &reason, 1, bytes);
		return 0;
	}
	{
		struct skb_shared_info *sh = (struct skb_shared_info *)(skb->head + skb->end);
		unsigned short segs = 0;

		if (!bpf_probe_read_kernel(&segs, sizeof(segs), &sh->gso_segs) && segs > 1)
			packets = segs;
	}
	k.reason = reason;
	k.ifindex = iface.ifindex;
	pl_drop_flow(&k, skb);
	pl_drop_stat(PL_DROP_SEEN);
	if (pl_drop_add(&pl_drops, &k, packets, bytes))
		pl_drop_stat(PL_DROP_FAILED);
	return 0;
}
