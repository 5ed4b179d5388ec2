// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * packetlake's packet observer: one parser behind an XDP and a TC (tcx) program. Each packet
 * becomes a struct pl_record (pl_record.h, generated from schema/columns.go) in the ring buffer
 * pl_events, followed by up to PL_SNIPPET_MAX bytes of L4 payload when it looks like DNS, TLS or
 * HTTP. The programs only observe: they always pass the packet on.
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
#include "snippet.h"
#include "emit.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PL_VLAN_HLEN 4

/*
 * L3 and L4+L7 run in global (__noinline, non-static) functions: the verifier checks each once,
 * with unknown arguments, instead of once per path reaching it -- inlined, VLAN tag counts times
 * IPv6 extension header chains times L4/L7 branches went past the 1M instruction limit. A global
 * function gets a usable ctx only through an argument of its program's ctx type, hence one thin
 * copy per hook around the shared always_inline bodies.
 */
static __always_inline int pl_do_l4(const struct pl_pkt *p, struct pl_scratch *s,
				    struct pl_l3 *l3)
{
	struct pl_l4 l4 = {};

	if (!s || !l3) /* arguments of global functions may be NULL to the verifier */
		return 0;
	if (pl_parse_l4(p, &s->rec, l3, &l4))
		pl_snippet(p, s, &l4);
	return 0;
}

__noinline int pl_l4_xdp(struct xdp_md *ctx, __u32 len, struct pl_scratch *s, struct pl_l3 *l3)
{
	struct pl_pkt p;

	pl_pkt_xdp(&p, ctx, len);
	return pl_do_l4(&p, s, l3);
}

__noinline int pl_l4_tc(struct __sk_buff *ctx, __u32 len, struct pl_scratch *s, struct pl_l3 *l3)
{
	struct pl_pkt p;

	pl_pkt_tc(&p, ctx, len);
	return pl_do_l4(&p, s, l3);
}

static __always_inline int pl_do_l3(const struct pl_pkt *p, struct pl_scratch *s, __u32 off)
{
	struct pl_l3 l3 = {};
	bool ok;

	if (!s)
		return 0;
	switch (s->rec.eth_type) {
	case ETH_P_IP:
		ok = pl_parse_ipv4(p, &s->rec, off, &l3);
		break;
	case ETH_P_IPV6:
		ok = pl_parse_ipv6(p, &s->rec, off, &l3);
		break;
	default:
		return 0;
	}
	if (!ok)
		return 0;
	if (p->xdp)
		return pl_l4_xdp(p->ctx, p->len, s, &l3);
	return pl_l4_tc(p->ctx, p->len, s, &l3);
}

__noinline int pl_l3_xdp(struct xdp_md *ctx, __u32 len, struct pl_scratch *s, __u32 off)
{
	struct pl_pkt p;

	pl_pkt_xdp(&p, ctx, len);
	return pl_do_l3(&p, s, off);
}

__noinline int pl_l3_tc(struct __sk_buff *ctx, __u32 len, struct pl_scratch *s, __u32 off)
{
	struct pl_pkt p;

	pl_pkt_tc(&p, ctx, len);
	return pl_do_l3(&p, s, off);
}

/*
 * The whole life of one packet. vlan_stripped: in TC the kernel may already have moved the outer
 * tag into skb->vlan_tci; it is still reported as vlan_id and its 4 bytes count in pkt_len.
 */
static __always_inline void pl_observe(const struct pl_pkt *p, __u32 ifindex, bool vlan_stripped,
				       __u16 tci)
{
	struct pl_scratch *s;
	struct pl_record *r;
	__u32 zero = 0, off = 0;

	pl_count(PL_STAT_SEEN);
	s = bpf_map_lookup_elem(&pl_scratch_map, &zero);
	if (!s) { /* cannot happen (index 0 of an array); counted so the invariant still holds */
		pl_count(PL_STAT_RING_FULL);
		return;
	}
	r = &s->rec;
	__builtin_memset(r, 0, sizeof(*r));
	r->ts_ns = bpf_ktime_get_ns();
	r->ifindex = ifindex;
	r->pkt_len = p->len;
	r->sample_rate = 1;
	if (vlan_stripped) {
		r->vlan_id = tci & PL_VLAN_ID_MASK;
		r->pkt_len += PL_VLAN_HLEN;
	}

	if (pl_parse_l2(p, r, &off, vlan_stripped)) {
		if (p->xdp)
			pl_l3_xdp(p->ctx, p->len, s, off);
		else
			pl_l3_tc(p->ctx, p->len, s, off);
	}

	if (r->parse_error)
		pl_count(PL_STAT_PARSE_ERROR_BASE + r->parse_error);
	pl_emit(s);
}

/* frags-aware so it also attaches to a veth/NIC with an MTU above one page; fine on any other. */
SEC("xdp.frags")
int pl_xdp(struct xdp_md *ctx)
{
	struct pl_pkt p;

	pl_pkt_xdp(&p, ctx, bpf_xdp_get_buff_len(ctx));
	pl_observe(&p, ctx->ingress_ifindex, false, 0);
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
	struct pl_pkt p;

	pl_pkt_tc(&p, skb, len);
	pl_observe(&p, ifindex, vlan_present, tci);
	return TC_ACT_UNSPEC; /* tcx: next program, or the default pass */
}

/* The yardstick for BENCH.md: what BPF_PROG_TEST_RUN costs around a program that does nothing. */
SEC("xdp")
int pl_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
