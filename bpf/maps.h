/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The maps and load-time constants the Go loader (loader.go) knows by name. */
#ifndef PL_MAPS_H
#define PL_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "pl_record.h"

/*
 * Records for user space. max_entries is a placeholder: the loader sets the size (Config.RingBytes)
 * before load.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} pl_events SEC(".maps");

/* One u64 per counter per CPU, indexed by enum pl_stat (+ parse error reason). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PL_STAT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} pl_stats SEC(".maps");

/*
 * A record is built here, then copied into the ring with bpf_ringbuf_output at its exact size
 * (header + snippet_len), so a record without a snippet costs the ring only 112 bytes. A per-CPU
 * map rather than the stack because the snippet does not fit in 512 bytes of stack. Safe to share
 * between the XDP and TC programs: both run in softirq on the packet's CPU, one after the other,
 * never nested. Being the map's value type also puts struct pl_record into the object's BTF.
 */
struct pl_scratch {
	struct pl_record rec;
	__u8 snippet[PL_SNIPPET_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_scratch);
} pl_scratch_map SEC(".maps");

/*
 * Pending ring bytes at which a producer forces a wake-up of the reader. Records are otherwise
 * written with BPF_RB_NO_WAKEUP: a wake-up per record costs more than the parse (INFRA.md), and
 * the reader polls with a deadline so a part-filled ring still drains. Set from Go before load
 * (Config.WakeupBytes).
 */
volatile const __u64 pl_wakeup_bytes = 256 * 1024;

#endif
