/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Exact per-flow counters and adaptive 1-in-N sampling of ordinary packets' records. */
#ifndef PL_FLOWS_H
#define PL_FLOWS_H

#include "pl_record.h"
#include "maps.h"
#include "stats.h"

#define PL_TCP_FIN 0x01
#define PL_TCP_SYN 0x02
#define PL_TCP_RST 0x04
#define PL_TCP_ACK 0x10
#define PL_IPPROTO_TCP 6

/*
 * The bucket a key hashes to first: its words folded with multiplies and shifts (every bit of
 * every word reaches the low bits that index the table), seeded per load.
 */
static __always_inline __u32 pl_flow_hash(const __u64 *w, const int words)
{
	__u64 h = pl_flow_seed;

	for (int i = 0; i < words; i++) {
		h = (h ^ w[i]) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
	}
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (__u32)h;
}

/*
 * This CPU's slot of the flow whose head (state PL_FLOW_LIVE, then the key: words 8-byte words)
 * is want, in table: the first LIVE bucket with that head among the PL_FLOW_PROBES its hash leads
 * to, or else the first EMPTY one before it, claimed for it (maps.h has the states). NULL if
 * neither: full.
 * The first word holds the state, so one compare per word checks the state and the key.
 */
static __always_inline struct pl_flow *pl_flow_slot(void *table, const __u64 *want, const int words, __u32 cpu)
{
	__u32 idx = pl_flow_hash(want, words);

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < PL_FLOW_PROBES; i++) {
		__u64 *b, diff = 0;

		idx = (idx + i) & pl_flow_mask; /* h, h+1, h+3, h+6, ... */
		b = bpf_map_lookup_elem(table, &idx);
		if (!b)
			return NULL;
		for (int j = 0; j < words; j++) /* no branch per word: fewer verifier states */
			diff |= b[j] ^ want[j];
		if (!diff)
			return (struct pl_flow *)(b + words) + cpu;
		if (*(volatile __u32 *)b != PL_FLOW_EMPTY)
			continue;
		/* Claim it: only one CPU wins; a loser probes on (and may claim the next for the same
		 * flow: ReadFlows reports both, the exporter sums them). The key is written while the
		 * bucket is CLAIMED, which nothing matches, and published with the second cmpxchg. */
		if (__sync_val_compare_and_swap((__u32 *)b, PL_FLOW_EMPTY, PL_FLOW_CLAIMED) != PL_FLOW_EMPTY)
			continue;
		*((__u32 *)b + 1) = (__u32)(want[0] >> 32); /* word 0's key half (bpfel only: gen.go) */
		for (int j = 1; j < words; j++)
			b[j] = want[j];
		__sync_val_compare_and_swap((__u32 *)b, PL_FLOW_CLAIMED, PL_FLOW_LIVE);
		return (struct pl_flow *)(b + words) + cpu;
	}
	return NULL;
}

/*
 * Adds the packet whose record r is to its flow (head want, in table), in this CPU's slot: only
 * this CPU writes it (programs never nest on a CPU), so plain adds are exact. The time is the
 * record's ts_ns: one bpf_ktime_get_ns() per packet. Returns < 0 if the table had no room.
 */
static __always_inline int pl_flow_add(void *table, const __u64 *want, const int words, const struct pl_record *r)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u16 fl = r->ip_proto == PL_IPPROTO_TCP ? r->tcp_flags : 0;
	struct pl_flow *f;

	if (cpu >= pl_flow_cpus) /* cannot happen (ids < possible CPUs); bounds the slot */
		return -1;
	f = pl_flow_slot(table, want, words, cpu);
	if (!f)
		return -1;
	f->packets += 1;
	f->bytes += r->pkt_len;
	f->last_ns = r->ts_ns;
	if (!f->first_ns)
		f->first_ns = r->ts_ns;
	f->syn += !!(fl & PL_TCP_SYN);
	f->fin += !!(fl & PL_TCP_FIN);
	f->rst += !!(fl & PL_TCP_RST);
	f->ack += !!(fl & PL_TCP_ACK);
	return 0;
}

/*
 * Adds the packet whose record r is to its flow: IPv4 without a tunnel id in pl_flows4 (20-byte
 * key), everything else in pl_flows (with the tunnel id). Counted in flow_counted, or flow_failed if the table had no room.
 */
static __always_inline void pl_flow_count(const struct pl_record *r)
{
	int err;

	if (!pl_flows_on)
		return;
	/* IPv4 with tunnel_id 0: the addresses are ::ffff:a.b.c.d (parse_l3.h) */
	if (r->ip_version == 4 && !r->tunnel_id) {
		union {
			struct pl_flow4_head h;
			__u64 w[sizeof(struct pl_flow4_head) / 8];
		} want;

		want.h.state = PL_FLOW_LIVE;
		__builtin_memcpy(want.h.key.src_addr, &r->src_addr[12], 4);
		__builtin_memcpy(want.h.key.dst_addr, &r->dst_addr[12], 4);
		want.h.key.ifindex = r->ifindex;
		want.h.key.src_port = r->src_port;
		want.h.key.dst_port = r->dst_port;
		want.h.key.vlan_id = r->vlan_id;
		want.h.key.ip_proto = r->ip_proto;
		want.h.key.pad = 0;
		err = pl_flow_add(&pl_flows4, want.w, sizeof(want.w) / 8, r);
	} else {
		union {
			struct pl_flow6_head h;
			__u64 w[sizeof(struct pl_flow6_head) / 8];
		} want;

		want.h.state = PL_FLOW_LIVE;
		__builtin_memcpy(want.h.key.src_addr, r->src_addr, 16);
		__builtin_memcpy(want.h.key.dst_addr, r->dst_addr, 16);
		want.h.key.ifindex = r->ifindex;
		want.h.key.src_port = r->src_port;
		want.h.key.dst_port = r->dst_port;
		want.h.key.vlan_id = r->vlan_id;
		want.h.key.ip_proto = r->ip_proto;
		want.h.key.ip_version = r->ip_version;
		want.h.key.tunnel_id = r->tunnel_id;
		want.h.key.pad2 = 0;
		err = pl_flow_add(&pl_flows, want.w, sizeof(want.w) / 8, r);
	}
	if (err < 0) {
		pl_count(PL_STAT_FLOW_FAILED);
		return;
	}
	pl_count(PL_STAT_FLOW_COUNTED);
}

/* Records always kept whatever the rate: TCP SYN/FIN/RST and L7 candidates (DNS, TLS, HTTP). */
static __always_inline bool pl_always_keep(const struct pl_record *r)
{
	if (r->l7_kind != PL_L7_NONE)
		return true;
	return r->ip_proto == PL_IPPROTO_TCP && (r->tcp_flags & (PL_TCP_SYN | PL_TCP_FIN | PL_TCP_RST));
}

/*
 * Whether the record r (already counted in its flow) goes to the ring. Under pressure (st->rate >
 * 1) only 1 in rate ordinary packets is kept, deterministically (every rate-th); the others are
 * counted seen + sampled_out at once. A kept ordinary record's sample_rate is the number of
 * ordinary packets it stands for on this CPU: itself plus those skipped since the previous one
 * kept -- rate, except around a change of rate -- so sum(sample_rate) over kept ordinary records
 * is the ordinary packets seen, but for at most rate - 1 still pending per CPU and the records
 * the ring refused.
 */
static __always_inline bool pl_sample_keep(struct pl_stage *st, struct pl_record *r)
{
	__u32 rate = st->rate;

	if (pl_always_keep(r))
		return true;
	if (rate > 1 && st->skip + 1 < rate) {
		st->skip += 1;
		pl_count(PL_STAT_SEEN);
		pl_count(PL_STAT_SAMPLED_OUT);
		return false;
	}
	r->sample_rate = st->skip + 1;
	st->skip = 0;
	return true;
}

/*
 * After a batch write: pending ring bytes decide the CPU's next rate. Above pl_sample_high it
 * doubles, a refused batch (ok == false) sets it to pl_sample_max, below pl_sample_low it halves.
 */
static __always_inline void pl_sample_adapt(struct pl_stage *st, __u64 pending, bool ok)
{
	__u32 rate = st->rate ? st->rate : 1;

	if (pl_sample_max <= 1)
		return;
	if (!ok) { /* the ring refused a batch: the most sampling at once, then ease off */
		rate = pl_sample_max;
	} else if (pending > pl_sample_high) {
		rate = rate * 2 > pl_sample_max ? pl_sample_max : rate * 2;
	} else if (pending < pl_sample_low && rate > 1) {
		rate /= 2;
	}
	st->rate = rate;
}

#endif
