/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Hands a finished record to user space and keeps seen == emitted + ring_full + sampled_out. */
#ifndef PL_EMIT_H
#define PL_EMIT_H

#include "pl_record.h"
#include "maps.h"
#include "stats.h"

/* Kernel ring buffer header in front of each record: counts towards pending bytes. */
#define PL_RINGBUF_HDR 8

static __always_inline void pl_emit(struct pl_scratch *s)
{
	__u64 size = sizeof(s->rec) + s->rec.snippet_len;
	__u64 pending, flags = BPF_RB_NO_WAKEUP;

	if (size > sizeof(*s)) /* cannot happen; tells the verifier the copy stays in the map value */
		size = sizeof(*s);
	/*
	 * Wake the reader only when this record makes the pending bytes cross the threshold: a
	 * wake-up per record, or per record above the threshold, costs several times the parse
	 * (INFRA.md). Concurrent CPUs may both see the crossing or neither; the reader's deadline
	 * covers the miss.
	 */
	pending = bpf_ringbuf_query(&pl_events, BPF_RB_AVAIL_DATA);
	if (pending < pl_wakeup_bytes && pending + size + PL_RINGBUF_HDR >= pl_wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&pl_events, s, size, flags) < 0)
		pl_count(PL_STAT_RING_FULL);
	else
		pl_count(PL_STAT_EMITTED);
}

#endif
