/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The maps and load-time constants the Go loader (load.go) knows by name. */
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
 * One record as the parser fills it: header, then -- only if tunnel_depth != 0 -- the tunnel
 * trailer, then up to PL_SNIPPET_MAX snippet bytes, of which snippet_len count (a record without
 * tunnel or snippet is 120 bytes in the ring). So the snippet starts at tun or right after it
 * (pl_snippet_at). pl_xdp and pl_tc lay it over the next free bytes of their CPU's stage
 * (pl_stage_map); pl_scratch_map holds one for pl_xdp_record, the per-record design kept for
 * BENCH.md. Per-CPU maps rather than the stack: the snippet does not fit in 512 bytes of stack.
 * Being a map's value type also puts struct pl_record and pl_record_tunnel into the object's BTF.
 */
struct pl_scratch {
	struct pl_record rec;
	struct pl_record_tunnel tun; /* valid only when rec.tunnel_depth != 0 (parse_tun.h writes it) */
	__u8 snippet[PL_SNIPPET_MAX];
};

/* Bytes of the tunnel trailer behind r: it is there exactly when the packet was tunnelled. */
static __always_inline __u32 pl_tun_len(const struct pl_record *r)
{
	return r->tunnel_depth ? sizeof(struct pl_record_tunnel) : 0;
}

/* Where s's snippet goes: right after the header, or after the trailer of a tunnelled packet. */
static __always_inline __u8 *pl_snippet_at(struct pl_scratch *s)
{
	return (__u8 *)&s->tun + pl_tun_len(&s->rec);
}

/* The bytes of s's record: what goes to the ring and what record.SampleLen walks. */
static __always_inline __u32 pl_record_len(const struct pl_record *r)
{
	return sizeof(*r) + pl_tun_len(r) + r->snippet_len;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_scratch);
} pl_scratch_map SEC(".maps");

/*
 * Batching (emit.h). Each CPU stages records back to back in buf -- struct pl_record, the tunnel
 * trailer if any and snippet_len bytes, the very bytes user space walks with record.SampleLen -- and hands the batch to the ring
 * with one bpf_ringbuf_output: one ring write, one wake-up check and one counter update per batch
 * instead of per packet. A record is built in place at buf + len, so the snippet is copied once
 * into buf and once into the ring, as in the per-record design. XDP, TC and the flush timer of a
 * CPU share its stage: all run in softirq (or with softirqs disabled, BPF_PROG_TEST_RUN) on that
 * CPU, one after the other, never nested.
 */
#define PL_STAGE_BYTES 16384
#define PL_RECORD_MAX (sizeof(struct pl_scratch)) /* header, trailer, largest snippet */
/* The largest offset a record may start at: a record of the largest size still fits. */
#define PL_STAGE_LAST (PL_STAGE_BYTES - PL_RECORD_MAX)

struct pl_stage {
	__u64 first_ts;    /* ts_ns of the oldest staged record */
	__u64 timer_due;   /* ktime the armed flush timer fires at; 0: not armed */
	__u32 len;         /* bytes staged in buf */
	__u32 n;           /* records staged */
	__u32 timer_ready; /* this CPU's timer is initialised */
	__u32 rate;        /* adaptive sampling (flows.h): keep 1 in rate ordinary packets; 0 = 1 */
	__u32 skip;        /* ordinary packets skipped since the last one kept */
	__u32 pad;
	__u8 buf[PL_STAGE_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_stage);
} pl_stage_map SEC(".maps");

/*
 * One flush timer per CPU, indexed by CPU number (timers cannot live in per-CPU maps). Armed,
 * pinned to its CPU, when a batch stays part-filled; it flushes the batch once it is
 * pl_batch_age_ns old, so a quiet interface still delivers. max_entries: the loader sets the
 * number of possible CPUs.
 */
struct pl_timer {
	struct bpf_timer t;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pl_timer);
} pl_timers SEC(".maps");

/*
 * Pending ring bytes at which a producer forces a wake-up of the reader. Records are otherwise
 * written with BPF_RB_NO_WAKEUP: a wake-up per record costs more than the parse (INFRA.md), and
 * the reader polls with a deadline so a part-filled ring still drains. Set from Go before load
 * (Config.WakeupBytes).
 */
volatile const __u64 pl_wakeup_bytes = 256 * 1024;

/*
 * Batch bounds, set from Go before load (Config.BatchRecords, Config.BatchAge, and the ring size):
 * a batch is written once it holds pl_batch_records records, or more than pl_batch_limit bytes
 * (the next record might not fit), or its oldest record is pl_batch_age_ns old.
 */
volatile const __u32 pl_batch_records = 32;
volatile const __u32 pl_batch_limit = PL_STAGE_LAST;
volatile const __u64 pl_batch_age_ns = 20 * 1000 * 1000;

/*
 * A packet that carries this value (XDP: 8 bytes of metadata in front of the frame; TC: cb[0..1])
 * flushes its CPU's batch right after its own record: bpf.TestRun uses it so that a replayed
 * packet's record is in the ring when the syscall returns, through the same program and parser as
 * live traffic. Random per load (set from Go), 0 disables; a live packet matching by chance only
 * flushes early.
 */
volatile const __u64 pl_flush_key = 0;

/*
 * Exact flow counters (flows.h): open-addressed hash tables the program probes itself, one bucket
 * per (5-tuple, vlan_id, ifindex, ip_version, tunnel_id) of the innermost packet. IPv4 flows with
 * tunnel_id 0 live in pl_flows4 under a 20-byte key; IPv6, non-IP frames and tunnelled flows with
 * an id in pl_flows under the full 52-byte one (a fourth word on every IPv4 packet's key cost
 * more than keeping the untunnelled IPv4 key short, BENCH.md) (bpf.FlowKey, which ReadFlows gives
 * for both). A bucket is a head (state + key) and one struct pl_flow per possible CPU: a CPU writes
 * only its own slot, so plain adds stay exact without atomics.
 *
 * Why arrays probed in the program, not a kernel hash map (BENCH.md): the LRU hash's inlined
 * lookup still called four kernel functions (hash, bucket walk, memcmp) per packet, ~37 ns of the
 * ~165 a packet costs; an array lookup is inlined to a few instructions.
 *
 * A bucket's life, every transition but the first two made by the collector (bpf/flows.go):
 *   EMPTY --(program, cmpxchg)--> CLAIMED --(writes the key, cmpxchg)--> LIVE
 *   LIVE --(idle, exported: collector, cmpxchg)--> RETIRED
 *   RETIRED --(exported again, a FlowInterval later: zeroed, then store)--> EMPTY
 * A program matches only LIVE buckets. One that matched just before the bucket was retired may
 * still add its packet: the collector reads a RETIRED bucket once more before freeing it, so
 * nothing is lost. Two CPUs may claim two buckets for one new flow at once, and a flow whose
 * bucket was retired gets a new one: ReadFlows reports buckets, the exporter sums them by key.
 * Full (no EMPTY bucket among PL_FLOW_PROBES): the packet counts in flow_failed, in no flow;
 * no flow is ever evicted with unexported counts.
 *
 * max_entries: the loader sets it (4/3 of Config.FlowEntries rounded up to a power of two),
 * and the value size (head + pl_flow_cpus slots). BPF_F_MMAPABLE: the collector reads and changes
 * states in place, with atomics.
 */
#define PL_FLOW_EMPTY 0
#define PL_FLOW_CLAIMED 1
#define PL_FLOW_LIVE 2
#define PL_FLOW_RETIRED 3

/*
 * Buckets a packet may look at: its hash h, then h+1, h+3, h+6, ... (triangular steps: no runs of
 * full buckets build up as with linear probing, and a power-of-two table is covered). With 32,
 * a table refuses no new flow below ~3/4 full (simulated: the first refusal at 77% full), so the
 * loader gives it 4/3 of Config.FlowEntries buckets; a packet of a known flow finds it in ~1.2
 * looks at that fill.
 */
#define PL_FLOW_PROBES 32

struct pl_flow_key {
	__u8 src_addr[16]; /* as in pl_record: IPv4 as ::ffff:a.b.c.d; zero for non-IP */
	__u8 dst_addr[16];
	__u32 ifindex;
	__u16 src_port;
	__u16 dst_port;
	__u16 vlan_id;
	__u8 ip_proto;
	__u8 ip_version;
	__u32 tunnel_id; /* pl_record.tunnel_id: the same inner flow in two VNIs is two flows */
	__u32 pad2;      /* zero */
};

/* IPv4 (ip_version 4): the addresses' last 4 bytes of pl_flow_key. */
struct pl_flow4_key {
	__u8 src_addr[4]; /* network order */
	__u8 dst_addr[4];
	__u32 ifindex;
	__u16 src_port;
	__u16 dst_port;
	__u16 vlan_id;
	__u8 ip_proto;
	__u8 pad; /* zero */
};

/* A bucket's head; 8-byte multiples (24, 56): compared as words, the slots follow aligned. */
struct pl_flow4_head {
	__u32 state; /* PL_FLOW_* */
	struct pl_flow4_key key;
};

struct pl_flow6_head {
	__u32 state;
	struct pl_flow_key key;
};

_Static_assert(sizeof(struct pl_flow4_head) == 24, "pl_flow4_head: 3 words");
_Static_assert(sizeof(struct pl_flow6_head) == 56, "pl_flow6_head: 7 words");

struct pl_flow {
	__u64 packets;
	__u64 bytes;      /* pkt_len: frame length on the wire */
	__u64 first_ns;   /* bpf_ktime_get_ns() of this CPU's first packet of the flow */
	__u64 last_ns;    /* ... and of its last */
	__u32 syn, fin, rst, ack; /* TCP packets with the flag set */
};

/* The declared value is a head and one slot; the loader sizes it to the head and pl_flow_cpus. */
struct pl_flow4_bucket {
	struct pl_flow4_head head;
	struct pl_flow slot[1];
};

struct pl_flow6_bucket {
	struct pl_flow6_head head;
	struct pl_flow slot[1];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pl_flow6_bucket);
} pl_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pl_flow4_bucket);
} pl_flows4 SEC(".maps");

/* Slots per bucket: possible CPUs, set from Go. A CPU numbered beyond it counts flow_failed. */
volatile const __u32 pl_flow_cpus = 1;

/* Buckets per table - 1 (a power of two - 1), set from Go. */
volatile const __u32 pl_flow_mask = 65535;

/* Seeds the bucket hash, random per load (set from Go): a sender cannot aim flows at one chain. */
volatile const __u64 pl_flow_seed = 0;

/* 0 turns flow counting off (BENCH: the cost without it). Set from Go (Config.NoFlows). */
volatile const __u32 pl_flows_on = 1;

/*
 * Adaptive sampling bounds, set from Go (Config.SampleMax, the ring size): a CPU doubles its rate
 * when a batch leaves more than pl_sample_high bytes pending in the ring (or does not fit), and
 * halves it below pl_sample_low, between 1 and pl_sample_max (<= 1: never sample).
 */
volatile const __u32 pl_sample_max = 64;
volatile const __u64 pl_sample_high = 12 << 20;
volatile const __u64 pl_sample_low = 4 << 20;

#endif
