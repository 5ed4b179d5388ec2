// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * packetlake's packet observer: one parser behind an XDP and a TC (tcx) program. Each packet
 * becomes a struct pl_record (pl_record.h, generated from schema/columns.go) followed by up to
 * PL_SNIPPET_MAX bytes of L4 payload when it looks like DNS, TLS or HTTP. Records are batched per
 * CPU and reach the ring buffer pl_events several to a sample (emit.h). The programs only
 * observe: they always pass the packet on.
 *
 * Built without vmlinux.h, from UAPI headers only, so `go generate ./bpf/` gives the same object
 * on any machine with the same clang and headers.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "pl_record.h"
#include "maps.h"
#include "stats.h"
#include "pkt.h"
#include "parse_l2.h"
#include "parse_l3.h"
#include "parse_l4.h"
#include "parse_tun.h"
#include "snippet.h"
#include "emit.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PL_VLAN_HLEN 4

/*
 * The parser is inlined into each program but for the IPv6 extension header walk, a global
 * (__noinline, non-static) function: the verifier checks it once, with unknown arguments, instead
 * of once per path reaching it -- VLAN tag counts times extension header chains times L4/L7
 * branches went past the 1M instruction limit. Everything else inline costs the verifier ~40k
 * instructions per program and saves the BPF-to-BPF calls per packet the L3 and L4 functions
 * used to cost (~7 ns each with this VM's return-thunk mitigation, BENCH.md); only packets
 * with extension headers pay one. A global function gets a usable ctx only through an argument
 * of its program's ctx type, hence one thin copy per hook.
 */
__noinline int pl_ipv6_ext_xdp(struct xdp_md *ctx, __u32 len, struct pl_scratch *s,
			       struct pl_l3 *l3)
{
	struct pl_pkt p;

	if (!s || !l3) /* arguments of global functions may be NULL to the verifier */
		return 0;
	pl_pkt_xdp(&p, ctx, len);
	return pl_ipv6_ext_walk(&p, &s->rec, l3);
}

__noinline int pl_ipv6_ext_tc(struct __sk_buff *ctx, __u32 len, struct pl_scratch *s,
			      struct pl_l3 *l3)
{
	struct pl_pkt p;

	if (!s || !l3)
		return 0;
	pl_pkt_tc(&p, ctx, len);
	return pl_ipv6_ext_walk(&p, &s->rec, l3);
}

/*
 * The encapsulation walk (parse_tun.h), global for the same reason: only tunnelled packets pay
 * the call. start is the offset << 16 | the EtherType there: 0 when the IP packet in l3 is
 * parsed already, PL_ETH_P_MPLS_UC for a label stack straight after L2.
 */
__noinline int pl_tunnel_xdp(struct xdp_md *ctx, __u32 len, struct pl_scratch *s, struct pl_l3 *l3,
			     __u32 start)
{
	struct pl_pkt p;

	if (!s || !l3)
		return 0;
	pl_pkt_xdp(&p, ctx, len);
	return pl_tunnel_walk(&p, s, &s->rec, l3, start >> 16, start & 0xffff);
}

__noinline int pl_tunnel_tc(struct __sk_buff *ctx, __u32 len, struct pl_scratch *s, struct pl_l3 *l3,
			    __u32 start)
{
	struct pl_pkt p;

	if (!s || !l3)
		return 0;
	pl_pkt_tc(&p, ctx, len);
	return pl_tunnel_walk(&p, s, &s->rec, l3, start >> 16, start & 0xffff);
}

static __always_inline bool pl_tunnel(const struct pl_pkt *p, struct pl_scratch *s, struct pl_l3 *l3,
				      __u32 start)
{
	if (p->xdp)
		return pl_tunnel_xdp(p->ctx, p->len, s, l3, start);
	return pl_tunnel_tc(p->ctx, p->len, s, l3, start);
}

static __always_inline void pl_do_l3(const struct pl_pkt *p, struct pl_scratch *s, __u32 off)
{
	struct pl_l3 l3 = {};
	struct pl_l4 l4 = {};
	bool ok;

	switch (s->rec.eth_type) {
	case ETH_P_IP:
		ok = pl_parse_ipv4(p, &s->rec, off, &l3);
		break;
	case ETH_P_IPV6:
		ok = pl_parse_ipv6(p, &s->rec, off, &l3);
		if (ok && pl_ipv6_ext_bit(s->rec.ip_proto)) {
			if (p->xdp)
				ok = pl_ipv6_ext_xdp(p->ctx, p->len, s, &l3);
			else
				ok = pl_ipv6_ext_tc(p->ctx, p->len, s, &l3);
		}
		break;
	case PL_ETH_P_MPLS_UC:
	case PL_ETH_P_MPLS_MC:
		ok = off < 0x10000 && pl_tunnel(p, s, &l3, off << 16 | PL_ETH_P_MPLS_UC);
		goto l4;
	default:
		return;
	}
	if (ok && pl_tunnel_candidate(p, &s->rec, &l3))
		ok = pl_tunnel(p, s, &l3, 0);
l4:
	if (ok && pl_parse_l4(p, &s->rec, &l3, &l4))
		pl_snippet(p, s, &l4);
}

/*
 * Fills the record at s from the packet: what every design shares, all but the hand-over. Only
 * the header is zeroed: the tunnel walk writes the whole trailer when it finds an encapsulation.
 * vlan_stripped: in TC the kernel may already have moved the outer tag into skb->vlan_tci; it is
 * still reported as vlan_id and its 4 bytes count in pkt_len.
 */
static __always_inline void pl_build(const struct pl_pkt *p, struct pl_scratch *s, __u32 ifindex,
				     bool vlan_stripped, __u16 tci)
{
	struct pl_record *r = &s->rec;
	__u32 off = 0;

	__builtin_memset(r, 0, sizeof(*r));
	r->ts_ns = bpf_ktime_get_ns();
	r->ifindex = ifindex;
	r->pkt_len = p->len;
	r->sample_rate = 1;
	if (vlan_stripped) {
		r->vlan_id = tci & PL_VLAN_ID_MASK;
		r->pkt_len += PL_VLAN_HLEN;
	}

	if (pl_parse_l2(p, r, &off, vlan_stripped))
		pl_do_l3(p, s, off);

	if (r->parse_error)
		pl_count(PL_STAT_PARSE_ERROR_BASE + r->parse_error);
}

/*
 * The whole life of one packet: its record is built in place at the end of this CPU's batch
 * (emit.h), which goes to the ring when full, old, or when flush (pl_flush_key) says so. The
 * packet is counted when its batch is written (pl_stage_flush).
 */
static __always_inline void pl_observe(const struct pl_pkt *p, __u32 ifindex, bool vlan_stripped,
				       __u16 tci, bool flush)
{
	struct pl_stage *st;
	struct pl_scratch *s;
	__u32 zero = 0, off;

	st = bpf_map_lookup_elem(&pl_stage_map, &zero);
	if (!st) { /* cannot happen (index 0 of an array); counted so the invariant still holds */
		pl_count(PL_STAT_SEEN);
		pl_count(PL_STAT_RING_FULL);
		return;
	}
	off = st->len;
	asm volatile("" : "+r"(off)); /* keep the check: the verifier needs the bound */
	if (off > PL_STAGE_LAST) { /* cannot happen: pl_stage_commit flushed past pl_batch_limit */
		pl_stage_flush(st, false);
		off = 0;
	}
	s = (struct pl_scratch *)&st->buf[off];
	pl_build(p, s, ifindex, vlan_stripped, tci);
	/* Every packet counts in its flow, exactly, whatever becomes of its record. */
	pl_flow_count(&s->rec);
	if (!pl_sample_keep(st, &s->rec))
		return; /* counted seen + sampled_out; the bytes at buf + off are free again */
	pl_stage_commit(st, pl_record_len(&s->rec), s->rec.ts_ns, flush);
}

/* The previous design, one ring sample per packet: kept only for BENCH.md's comparison. */
static __always_inline void pl_observe_record(const struct pl_pkt *p, __u32 ifindex)
{
	struct pl_scratch *s;
	__u32 zero = 0;

	pl_count(PL_STAT_SEEN);
	s = bpf_map_lookup_elem(&pl_scratch_map, &zero);
	if (!s) {
		pl_count(PL_STAT_RING_FULL);
		return;
	}
	pl_build(p, s, ifindex, false, 0);
	pl_emit(s);
}

/* XDP: pl_flush_key in 8 bytes of metadata in front of the frame (bpf.TestRun puts it there). */
static __always_inline bool pl_flush_asked_xdp(struct xdp_md *ctx)
{
	void *meta = (void *)(long)ctx->data_meta;
	void *data = (void *)(long)ctx->data;

	if (!pl_flush_key || meta + sizeof(__u64) > data)
		return false;
	return *(__u64 *)meta == pl_flush_key;
}

/*
 * Two XDP programs around the same parser, differing only in how they learn the frame length.
 * pl_xdp is frags-aware so it also attaches to a veth/NIC with an MTU above one page: a frame
 * may then continue in fragments beyond data_end, and bpf_xdp_get_buff_len gives the whole
 * length. pl_xdp_linear is not (no BPF_F_XDP_HAS_FRAGS): the kernel never hands it a
 * multi-buffer frame -- drivers refuse to attach it (or to raise the MTU under it) where frames
 * would not fit one buffer, and generic XDP linearizes the skb first -- so data_end - data is the
 * whole frame, and the helper call (~7 ns with this VM's return thunk, BENCH.md) is saved.
 * AttachXDP attaches pl_xdp_linear and falls back to pl_xdp when the kernel refuses it.
 */
SEC("xdp.frags")
int pl_xdp(struct xdp_md *ctx)
{
	struct pl_pkt p;

	pl_pkt_xdp(&p, ctx, bpf_xdp_get_buff_len(ctx));
	pl_observe(&p, ctx->ingress_ifindex, false, 0, pl_flush_asked_xdp(ctx));
	return XDP_PASS;
}

SEC("xdp")
int pl_xdp_linear(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pl_pkt p;

	pl_pkt_xdp(&p, ctx, data_end - data);
	p.linear = true;
	pl_observe(&p, ctx->ingress_ifindex, false, 0, pl_flush_asked_xdp(ctx));
	return XDP_PASS;
}

SEC("tc")
int pl_tc(struct __sk_buff *skb)
{
	/* Every __sk_buff field is read up front: clang 14 otherwise emits ctx + variable offset,
	 * which the verifier rejects (INFRA.md). */
	__u32 len = skb->len;
	__u32 ifindex = skb->ifindex;
	__u32 vlan_present = skb->vlan_present;
	__u32 tci = skb->vlan_tci;
	__u64 key = (__u64)skb->cb[1] << 32 | skb->cb[0]; /* bpf.TestRun's pl_flush_key */
	struct pl_pkt p;

	pl_pkt_tc(&p, skb, len);
	pl_observe(&p, ifindex, vlan_present, tci, pl_flush_key && key == pl_flush_key);
	return TC_ACT_UNSPEC; /* tcx: next program, or the default pass */
}

/* pl_xdp as it was before batching (one ring sample per packet), for BENCH.md. */
SEC("xdp.frags")
int pl_xdp_record(struct xdp_md *ctx)
{
	struct pl_pkt p;

	pl_pkt_xdp(&p, ctx, bpf_xdp_get_buff_len(ctx));
	pl_observe_record(&p, ctx->ingress_ifindex);
	return XDP_PASS;
}

/*
 * Writes out the batch of the CPU it runs on. bpf.Objects.Flush runs it with BPF_PROG_TEST_RUN
 * on each CPU in turn (the thread pinned there; test runs keep softirqs off, so it cannot
 * interleave with a packet's program on that CPU).
 */
SEC("xdp")
int pl_flush(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct pl_stage *st = bpf_map_lookup_elem(&pl_stage_map, &zero);

	if (st)
		pl_stage_flush(st, false);
	return XDP_PASS;
}

/* The yardstick for BENCH.md: what BPF_PROG_TEST_RUN costs around a program that does nothing. */
SEC("xdp")
int pl_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/*
 * Yardsticks that tell two machines apart (BENCH.md, "Why the ratio moves"): each does one kind
 * of operation PL_COST_N times, so (its time - pl_xdp_pass's) / PL_COST_N is what one costs on
 * the machine at hand. The parser's cost over the empty program is mostly a handful of these per
 * packet, and their price depends on the CPU's call/return mitigations (SRSO, retbleed) and the
 * clock source more than on the code. Only BenchmarkParserCaptures runs them.
 */
#define PL_COST_N 16

/* A BPF-to-BPF call that does nothing: the empty asm keeps clang from folding it away. */
static __noinline __u32 pl_cost_fn(__u32 x)
{
	asm volatile("" : "+r"(x));
	return x;
}

SEC("xdp")
int pl_cost_call(struct xdp_md *ctx)
{
	__u32 x = 0;

#pragma clang loop unroll(full)
	for (int i = 0; i < PL_COST_N; i++)
		x = pl_cost_fn(x);
	return x ? XDP_DROP : XDP_PASS;
}

/* A helper the verifier does not inline and that does next to nothing: the call and its return. */
SEC("xdp")
int pl_cost_helper(struct xdp_md *ctx)
{
#pragma clang loop unroll(full)
	for (int i = 0; i < PL_COST_N; i++)
		bpf_get_prandom_u32();
	return XDP_PASS;
}

/* The clock every record reads once. */
SEC("xdp")
int pl_cost_ktime(struct xdp_md *ctx)
{
#pragma clang loop unroll(full)
	for (int i = 0; i < PL_COST_N; i++)
		bpf_ktime_get_ns();
	return XDP_PASS;
}

/*
 * One ring reservation and its commit, as a batch write pays (plus the copy). Discarded, so no
 * reader ever sees these samples (readers skip discarded ones); the commit is the same path.
 */
SEC("xdp")
int pl_cost_ring(struct xdp_md *ctx)
{
#pragma clang loop unroll(full)
	for (int i = 0; i < PL_COST_N; i++) {
		void *p = bpf_ringbuf_reserve(&pl_events, 64, 0);

		if (p)
			bpf_ringbuf_discard(p, BPF_RB_NO_WAKEUP);
	}
	return XDP_PASS;
}
