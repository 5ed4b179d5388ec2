/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Exact per-CPU counters: every packet moves "seen" and exactly one of emitted/ring_full/sampled_out. */
#ifndef PL_STATS_H
#define PL_STATS_H

#include "maps.h"

static __always_inline void pl_count_n(__u32 slot, __u64 n)
{
	/* Per-CPU and never nested on one CPU (see pl_stage): a plain add is exact. */
	__u64 *v = bpf_map_lookup_elem(&pl_stats, &slot);

	if (v)
		*v += n;
}

static __always_inline void pl_count(__u32 slot)
{
	pl_count_n(slot, 1);
}

#endif
