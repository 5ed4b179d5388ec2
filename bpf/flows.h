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

/* errno: bpf_map_update_elem with BPF_NOEXIST on an existing key (another CPU made the entry). */
#define PL_EEXIST 17

/*
 * Adds the packet whose record r is to its flow in map (key k), in this CPU's slot of the entry.
 * Only this CPU writes that slot (programs never nest on a CPU), so plain adds are exact. The hit
 * path is one inlined map lookup; a new flow is inserted with all slots zero first (pl_flow_zero),
 * then looked up again. The time is the record's ts_ns: one bpf_ktime_get_ns() per packet.
 * Returns < 0 if the map refused the entry.
 */
static __always_inline int pl_flow_add(void *map, const void *k, const struct pl_record *r)
{
	__u32 cpu = bpf_get_smp_processor_id(), zero = 0;
	__u16 fl = r->ip_proto == PL_IPPROTO_TCP ? r->tcp_flags : 0;
	struct pl_flow *f;

	if (cpu >= pl_flow_cpus) /* cannot happen (ids < possible CPUs); bounds the slot */
		return -1;
	f = bpf_map_lookup_elem(map, k);
	if (!f) {
		void *z = bpf_map_lookup_elem(&pl_flow_zero, &zero);
		long err;

		if (!z)
			return -1;
		err = bpf_map_update_elem(map, k, z, BPF_NOEXIST);
		if (err < 0 && err != -PL_EEXIST)
			return -1;
		f = bpf_map_lookup_elem(map, k);
		if (!f) /* evicted in between by another CPU's insert: counts as refused */
			return -1;
	}
	f += cpu;
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
 * Adds the packet whose record r is to its flow: IPv4 in pl_flows4 (20-byte key), everything
 * else in pl_flows. Counted in flow_counted, or flow_failed if the map refused the entry.
 */
static __always_inline void pl_flow_count(const struct pl_record *r)
{
	int err;

	if (!pl_flows_on)
		return;
	if (r->ip_version == 4) { /* the addresses are ::ffff:a.b.c.d (parse_l3.h) */
		struct pl_flow4_key k;

		__builtin_memcpy(k.src_addr, &r->src_addr[12], 4);
		__builtin_memcpy(k.dst_addr, &r->dst_addr[12], 4);
		k.ifindex = r->ifindex;
		k.src_port = r->src_port;
		k.dst_port = r->dst_port;
		k.vlan_id = r->vlan_id;
		k.ip_proto = r->ip_proto;
		k.pad = 0;
		err = pl_flow_add(&pl_flows4, &k, r);
	} else {
		struct pl_flow_key k;

		__builtin_memset(&k, 0, sizeof(k));
		__builtin_memcpy(k.src_addr, r->src_addr, 16);
		__builtin_memcpy(k.dst_addr, r->dst_addr, 16);
		k.ifindex = r->ifindex;
		k.src_port = r->src_port;
		k.dst_port = r->dst_port;
		k.vlan_id = r->vlan_id;
		k.ip_proto = r->ip_proto;
		k.ip_version = r->ip_version;
		err = pl_flow_add(&pl_flows, &k, r);
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
