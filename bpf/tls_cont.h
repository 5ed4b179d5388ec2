/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TLS handshake records that span several TCP segments (a post-quantum ClientHello is ~2 KB: two
 * segments). Only a segment that starts a record is classified as TLS (snippet.h); the rest of the
 * record would never reach user space. So when a ClientHello record is longer than its segment,
 * the flow is remembered here (direction-sensitive 5-tuple + tunnel id) with the sequence range
 * still missing and a deadline; a later segment of the flow whose first byte falls in that range
 * gets its payload copied with l7_kind PL_L7_TLS_CONT. User space joins the pieces by tcp_seq
 * (record/tlsreasm.go). Out-of-order and retransmitted pieces inside the range are copied too:
 * user space orders them and refuses conflicting bytes.
 *
 * Counters: tracked (flows remembered), copied, outside (a remembered flow's segment outside the
 * missing range: not copied), done (the missing bytes came, in order). tracked - done is what
 * the kernel gave up on or still waits for: the deadline passed, the LRU evicted the flow
 * (neither can be seen cheaply here: a flow past every deadline is never looked up again), or a
 * piece came out of order (copied, but the range only closes in order).
 *
 * Cost on every other packet: TCP payload that classifies as nothing reads one array slot
 * (pl_tls_cont_until, by a hash of its flow) and compares it with the packet's timestamp; only
 * while a remembered flow of that slot may still be waiting does it look the flow up in the LRU
 * hash.
 */
#ifndef PL_TLS_CONT_H
#define PL_TLS_CONT_H

#include <linux/in.h>
#include "pl_record.h"
#include "maps.h"
#include "stats.h"

/* Bytes a flow may still be missing: a TLS record's largest plaintext (2^14) and its header. */
#define PL_TLS_CONT_MAX (16384 + 5)
/* How long a flow is remembered: a client's hello leaves in one burst, well within a second. */
#define PL_TLS_CONT_NS (1000ULL * 1000 * 1000)

struct pl_tls_cont_key {
	__u8 src_addr[16]; /* as in pl_record */
	__u8 dst_addr[16];
	__u32 tunnel_id;
	__u16 src_port;
	__u16 dst_port;
};

struct pl_tls_cont {
	__u64 deadline; /* ts_ns after which the flow is forgotten */
	__u32 start;    /* tcp_seq of the first missing byte */
	__u32 left;     /* missing bytes from start on */
};

/* 0 turns it off (Config.NoTLSCont): the verifier then drops the code below as dead. Set from Go. */
volatile const __u32 pl_tls_cont_on = 1;

/* LRU: a flood of hellos that never continue pushes out the oldest, never blocks new ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct pl_tls_cont_key);
	__type(value, struct pl_tls_cont);
} pl_tls_cont SEC(".maps");

/*
 * The gate in front of the hash: per slot (a hash of the flow), the latest deadline of the flows
 * remembered there; 0 once the last of them completed. While a packet's timestamp is past its
 * slot's value no entry can match it, and the LRU lookup (~26 ns, BENCH.md) is skipped: on a
 * server taking post-quantum hellos all the time only the slots of the hellos in flight are open.
 * A flow that completes closes its slot only if the slot holds its own deadline; if another flow
 * of the same slot was still waiting with an earlier one, that flow's rest is missed (user space
 * counts it expired). Plain stores from several CPUs may lose one of two deadlines set within
 * the same instant; they differ by that instant only.
 */
#define PL_TLS_CONT_SLOTS 4096

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PL_TLS_CONT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} pl_tls_cont_until SEC(".maps");

/* The gate slot of r's flow: the key's last address words, ports and tunnel id, multiplied. */
static __always_inline __u64 *pl_tls_cont_slot(const struct pl_record *r)
{
	__u32 a, b, h;

	__builtin_memcpy(&a, r->src_addr + 12, 4);
	__builtin_memcpy(&b, r->dst_addr + 12, 4);
	h = (a ^ b ^ r->tunnel_id ^ ((__u32)r->src_port << 16 | r->dst_port)) * 0x9e3779b1u;
	h >>= 20; /* 32 - log2(PL_TLS_CONT_SLOTS) */
	return bpf_map_lookup_elem(&pl_tls_cont_until, &h);
}

/* Closes the slot after the flow whose deadline it holds is forgotten. */
static __always_inline void pl_tls_cont_close(__u64 *until, __u64 deadline)
{
	if (*until == deadline)
		*until = 0;
}

static __always_inline void pl_tls_cont_key(const struct pl_record *r, struct pl_tls_cont_key *k)
{
	__builtin_memcpy(k->src_addr, r->src_addr, sizeof(k->src_addr));
	__builtin_memcpy(k->dst_addr, r->dst_addr, sizeof(k->dst_addr));
	k->tunnel_id = r->tunnel_id;
	k->src_port = r->src_port;
	k->dst_port = r->dst_port;
}

/*
 * After a TLS segment's snippet was copied: remembers the flow when the handshake record goes on
 * past this segment. Only when the whole segment was copied, or user space would get a hole.
 */
static __always_inline void pl_tls_cont_start(const struct pl_scratch *s, const __u8 *snip, __u32 avail)
{
	const struct pl_record *r = &s->rec;
	struct pl_tls_cont_key k;
	struct pl_tls_cont v = {};
	__u32 need;
	__u64 *until;

	if (!pl_tls_cont_on || r->snippet_len < 5 || r->snippet_len != avail || snip[0] != 0x16)
		return; /* (a ChangeCipherSpec first: not followed) */
	need = 5 + ((__u32)snip[3] << 8 | snip[4]);
	if (need <= avail)
		return;
	pl_tls_cont_key(r, &k);
	v.deadline = r->ts_ns + PL_TLS_CONT_NS;
	v.start = r->tcp_seq + avail;
	v.left = need - avail;
	/* A retransmitted first segment renews its flow without counting it twice. */
	if (bpf_map_update_elem(&pl_tls_cont, &k, &v, BPF_NOEXIST) == 0)
		pl_count(PL_STAT_TLS_CONT_TRACKED);
	else if (bpf_map_update_elem(&pl_tls_cont, &k, &v, BPF_ANY) < 0)
		return;
	until = pl_tls_cont_slot(r);
	if (until && *until < v.deadline)
		*until = v.deadline;
}

/*
 * For TCP payload that classified as nothing: true when it continues a remembered record (its
 * payload is then to be copied as PL_L7_TLS_CONT). The flow is forgotten once the missing bytes
 * came in order, or at its first packet after the deadline.
 */
static __always_inline bool pl_tls_cont_match(const struct pl_record *r, __u32 avail)
{
	struct pl_tls_cont_key k;
	struct pl_tls_cont *v;
	__u64 *until;
	__u32 d;

	if (!pl_tls_cont_on)
		return false;
	until = pl_tls_cont_slot(r);
	if (!until || r->ts_ns > *until)
		return false;
	pl_tls_cont_key(r, &k);
	v = bpf_map_lookup_elem(&pl_tls_cont, &k);
	if (!v)
		return false;
	if (r->ts_ns > v->deadline) { /* given up: tracked - done counts it */
		pl_tls_cont_close(until, v->deadline);
		bpf_map_delete_elem(&pl_tls_cont, &k);
		return false;
	}
	d = r->tcp_seq - v->start; /* modulo 2^32, as sequence numbers are */
	if (d >= v->left) {
		pl_count(PL_STAT_TLS_CONT_OUTSIDE);
		return false;
	}
	pl_count(PL_STAT_TLS_CONT_COPIED);
	if (d == 0) { /* in order: the range shrinks; a piece that came early stays inside it */
		if (avail >= v->left) {
			pl_tls_cont_close(until, v->deadline);
			bpf_map_delete_elem(&pl_tls_cont, &k);
			pl_count(PL_STAT_TLS_CONT_DONE);
		} else {
			v->start += avail;
			v->left -= avail;
		}
	}
	return true;
}

#endif
