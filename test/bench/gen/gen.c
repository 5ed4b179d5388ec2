// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * Traffic generator for the live line-rate benchmark (bench/linerate_live_test.go): run with
 * BPF_PROG_TEST_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES) and ingress_ifindex = one
 * end of a veth, each run rewrites the frame's IPv4 source address and TCP source port from a
 * counter, so consecutive packets cycle through flow_mask + 1 flows, and transmits it (XDP_TX)
 * out of that end: it arrives at the other end of the pair like any received frame.
 *
 * The IPv4 header checksum is kept valid incrementally; the TCP checksum is left as it is
 * (nothing on the receiving side verifies it: the frame is addressed to another host's MAC).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// flow_mask + 1 flows (a power of two), set at load.
volatile const __u32 flow_mask = 0;
// Frames generated, all CPUs (atomic: the count is the benchmark's "sent").
__u64 generated = 0;

static __always_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

SEC("xdp")
int gen_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);

	if ((void *)(tcp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_ABORTED;
	__u32 i = (__u32)__sync_fetch_and_add(&generated, 1) & flow_mask;
	// 10.0.0.0/8 sources, 16 ports each: flow i = (10.x.y.z with xyz = i >> 4, port 1024 + i % 16).
	ip->saddr = bpf_htonl(0x0a000000 | ((i >> 4) & 0xffffff));
	tcp->source = bpf_htons(1024 + (i & 15));
	ip->check = 0;
	__u32 s = 0;
	__u16 *w = (__u16 *)ip;
#pragma clang loop unroll(full)
	for (int k = 0; k < 10; k++)
		s += w[k];
	ip->check = csum_fold(s);
	return XDP_TX;
}
