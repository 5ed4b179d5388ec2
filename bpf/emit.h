/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Hands finished records to user space and keeps seen == emitted + ring_full + sampled_out. */
#ifndef PL_EMIT_H
#define PL_EMIT_H

#include "pl_record.h"
#include "maps.h"
#include "stats.h"
#include "pkt.h"
#include "flows.h"

/* Kernel ring buffer header in front of each sample: counts towards pending bytes. */
#define PL_RINGBUF_HDR 8

/* UAPI headers older than 6.7 lack it: the timer fires on the CPU that armed it. */
#ifndef BPF_F_TIMER_CPU_PIN
#define BPF_F_TIMER_CPU_PIN (1ULL << 1)
#endif
#define PL_CLOCK_MONOTONIC 1

/*
 * Wake the reader only when this sample makes the pending bytes cross the threshold: a wake-up
 * per sample, or per sample above the threshold, costs several times the parse (INFRA.md).
 * Concurrent CPUs may both see the crossing or neither; the reader's deadline covers the miss.
 */
static __always_inline __u64 pl_wakeup_flags_at(__u64 pending, __u64 size)
{
	if (pending < pl_wakeup_bytes && pending + size + PL_RINGBUF_HDR >= pl_wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 pl_wakeup_flags(__u64 size)
{
	return pl_wakeup_flags_at(bpf_ringbuf_query(&pl_events, BPF_RB_AVAIL_DATA), size);
}

/* The per-record design (pl_xdp_record, kept for BENCH.md): one ring sample per packet. */
static __always_inline void pl_emit(struct pl_scratch *s)
{
	__u64 size = pl_record_len(&s->rec);

	if (size > sizeof(*s)) /* cannot happen; tells the verifier the copy stays in the map value */
		size = sizeof(*s);
	if (bpf_ringbuf_output(&pl_events, s, size, pl_wakeup_flags(size)) < 0)
		pl_count(PL_STAT_RING_FULL);
	else
		pl_count(PL_STAT_EMITTED);
}

/*
 * Writes the staged batch as one ring sample. Its packets are counted only now, all at once: as
 * "seen" and as "emitted", or as "ring_full" when the ring has no room for the sample. So
 * seen == emitted + ring_full + sampled_out holds exactly, per CPU, whenever no batch is being
 * written; a staged packet (at most pl_batch_records per CPU, for at most pl_batch_age_ns) is in
 * none of them yet.
 * wake: force a wake-up (the timer's flush of a quiet CPU).
 */
static __always_inline void pl_stage_flush(struct pl_stage *st, bool wake)
{
	__u32 len = st->len, n = st->n;
	__u64 flags, pending;
	bool ok;

	if (n == 0)
		return;
	len = pl_clamp_len(len, PL_STAGE_BYTES);
	pending = bpf_ringbuf_query(&pl_events, BPF_RB_AVAIL_DATA);
	flags = wake ? BPF_RB_FORCE_WAKEUP : pl_wakeup_flags_at(pending, len);
	pl_count_n(PL_STAT_SEEN, n);
	ok = len != 0 && bpf_ringbuf_output(&pl_events, st->buf, len, flags) == 0;
	if (ok)
		pl_count_n(PL_STAT_EMITTED, n);
	else
		pl_count_n(PL_STAT_RING_FULL, n);
	/* The ring's fill after this batch sets the CPU's sampling rate (flows.h). */
	pl_sample_adapt(st, pending + (ok ? len + PL_RINGBUF_HDR : 0), ok);
	st->len = 0;
	st->n = 0;
}

/*
 * The flush timer of the CPU it was armed on (pinned). A batch old enough is written, with a
 * wake-up: this is the quiet-interface case, at most once per pl_batch_age_ns per CPU. A younger
 * one (its older records were flushed by size since the timer was armed) re-arms for the rest.
 */
static int pl_timer_fire(void *map, __u32 *key, struct pl_timer *t)
{
	__u32 zero = 0;
	struct pl_stage *st = bpf_map_lookup_elem(&pl_stage_map, &zero);
	__u64 now, due;

	if (!st || *key != bpf_get_smp_processor_id()) /* moved off its CPU (hotplug): not ours */
		return 0;
	st->timer_due = 0;
	if (st->n == 0)
		return 0;
	now = bpf_ktime_get_ns();
	due = st->first_ts + pl_batch_age_ns;
	if (now >= due) {
		pl_stage_flush(st, true);
		return 0;
	}
	if (bpf_timer_start(&t->t, due - now, BPF_F_TIMER_CPU_PIN) == 0)
		st->timer_due = due;
	return 0;
}

/*
 * Makes sure this CPU's timer will look at the staged batch by the time it is pl_batch_age_ns
 * old. Usually already armed: one bpf_timer_start per batch age at most. A timer that should
 * have fired long ago (lost when its CPU went offline) is armed again.
 */
static __always_inline void pl_stage_arm(struct pl_stage *st, __u64 now)
{
	__u32 cpu;
	struct pl_timer *t;

	if (st->timer_due && now < st->timer_due + pl_batch_age_ns)
		return;
	cpu = bpf_get_smp_processor_id();
	t = bpf_map_lookup_elem(&pl_timers, &cpu);
	if (!t)
		return;
	if (!st->timer_ready) {
		/* -EBUSY if a previous life of this flag already did it: fine either way. */
		bpf_timer_init(&t->t, &pl_timers, PL_CLOCK_MONOTONIC);
		if (bpf_timer_set_callback(&t->t, pl_timer_fire) < 0)
			return;
		st->timer_ready = 1;
	}
	if (bpf_timer_start(&t->t, pl_batch_age_ns, BPF_F_TIMER_CPU_PIN) == 0)
		st->timer_due = now + pl_batch_age_ns;
}

/*
 * Takes the record just built at buf + st->len (size bytes) into the batch and writes the batch
 * out when it is full (by records, or the next record might not fit), old, or asked to (flush:
 * the packet carried pl_flush_key). Otherwise the timer bounds how long it may wait.
 */
static __always_inline void pl_stage_commit(struct pl_stage *st, __u32 size, __u64 ts, bool flush)
{
	if (st->n == 0)
		st->first_ts = ts;
	st->len += size;
	st->n += 1;
	if (flush || st->n >= pl_batch_records || st->len > pl_batch_limit ||
	    ts - st->first_ts >= pl_batch_age_ns) {
		pl_stage_flush(st, false);
		return;
	}
	pl_stage_arm(st, ts);
}

#endif
