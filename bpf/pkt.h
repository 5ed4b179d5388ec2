/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One way to read packet bytes from both hooks: every header is copied into a stack buffer.
 *
 * Fast path: direct packet access, when the header lies in the linear part (the usual case).
 * Slow path: bpf_xdp_load_bytes / bpf_skb_load_bytes, which bound-check against the whole
 * packet and so also read XDP fragments (xdp.frags) and non-linear skbs. Either way a header
 * running past the end of the packet fails to load -- our "truncated" signal; no length from the
 * packet is ever used to form a pointer without a check. Copying (instead of parsing in place)
 * keeps one code path after the load, so the verifier does not explore the rest twice. The
 * helper-only version cost 30-40 ns more per header in BENCH.md's runs.
 */
#ifndef PL_PKT_H
#define PL_PKT_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Direct access only below this offset: bounds the variable offset for the verifier. */
#define PL_DIRECT_MAX_OFF 4096

/*
 * Every buffer pl_load copies into is declared PL_ALIGNED: pl_load tells clang both ends are
 * 8-byte aligned, so the copy is done in 8-byte words instead of byte loads shifted and or-ed
 * together (what clang emits for a packet pointer of unknown alignment: ~4 instructions a
 * byte). The packet side is not really aligned; the verifier allows misaligned packet access on
 * x86-64 (efficient unaligned access), the stack side must be aligned, hence the attribute.
 */
#define PL_ALIGNED __attribute__((aligned(8)))

struct pl_pkt {
	void *ctx;
	void *data, *data_end; /* linear part, for direct access */
	__u32 len;             /* bytes readable through pl_load: linear part + fragments */
	bool xdp;              /* a constant after inlining: each program keeps only its helper */
	bool linear;           /* a constant: every byte is in [data, data_end) (pl_xdp_linear) */
};

static __always_inline void pl_pkt_xdp(struct pl_pkt *p, struct xdp_md *ctx, __u32 len)
{
	p->ctx = ctx;
	p->data = (void *)(long)ctx->data;
	p->data_end = (void *)(long)ctx->data_end;
	p->len = len;
	p->xdp = true;
	p->linear = false;
}

/* skb->data/data_end are read here, at the top of each function: see pl_tc. */
static __always_inline void pl_pkt_tc(struct pl_pkt *p, struct __sk_buff *ctx, __u32 len)
{
	p->ctx = ctx;
	p->data = (void *)(long)ctx->data;
	p->data_end = (void *)(long)ctx->data_end;
	p->len = len;
	p->xdp = false;
	p->linear = false;
}

/* Copies n (at most 64) bytes at off into to, through the helper only; n may vary. */
static __always_inline long pl_load_slow(const struct pl_pkt *p, __u32 off, void *to, __u32 n)
{
	if (p->xdp)
		return bpf_xdp_load_bytes(p->ctx, off, to, n);
	return bpf_skb_load_bytes(p->ctx, off, to, n);
}

/*
 * Copies n bytes (a constant) at off into to (PL_ALIGNED); < 0 when [off, off+n) is not inside
 * the packet.
 */
static __always_inline long pl_load(const struct pl_pkt *p, __u32 off, void *to, const __u32 n)
{
	__u8 *ptr;

	if (off < PL_DIRECT_MAX_OFF) {
		/* Bound off again for the verifier: clang may form the pointer from a copy of off that
		 * the check above did not bound. The empty asm keeps clang from dropping the mask. */
		asm volatile("" : "+r"(off));
		off &= PL_DIRECT_MAX_OFF - 1;
		ptr = (__u8 *)p->data + off;
		if ((void *)(ptr + n) <= p->data_end) {
			__builtin_memcpy(__builtin_assume_aligned(to, 8), __builtin_assume_aligned(ptr, 8), n);
			return 0;
		}
	}
	/* A frame all in its linear part (shorter than PL_DIRECT_MAX_OFF) has no such bytes: the
	 * helper would fail too. And each call site, taken or not, makes clang keep what is live
	 * across it in BPF's 4 callee-saved registers or on the stack: without them pl_xdp_linear's
	 * parser spills less and measured 1.1-1.7 ns faster (BENCH.md, session 9). */
	if (p->linear)
		return -1;
	return pl_load_slow(p, off, to, n);
}

/*
 * Copies n < 8 bytes (n may vary) at off into to. In a frame all in its linear part (p->linear)
 * byte by byte by direct access, so that pl_xdp_linear's inlined parser has no helper call site
 * (see pl_load); elsewhere through the helper, which also reads fragments.
 */
static __always_inline long pl_load_small(const struct pl_pkt *p, __u32 off, __u8 *to, __u32 n)
{
	__u8 *src;

	if (!p->linear)
		return pl_load_slow(p, off, to, n);
	if (off >= PL_DIRECT_MAX_OFF)
		return -1;
	asm volatile("" : "+r"(off)); /* as in pl_load */
	off &= PL_DIRECT_MAX_OFF - 1;
	src = (__u8 *)p->data + off;
	for (int i = 0; i < 7; i++) {
		if (i >= n)
			break;
		if ((void *)(src + i + 1) > p->data_end)
			return -1;
		to[i] = src[i];
	}
	return 0;
}

/*
 * Bounds a length for a load helper to [0, max]. The verifier does not relate two packet offsets,
 * so end - off can look negative to it even after end > off was checked; the empty asm hides the
 * value from clang so it cannot drop the checks as redundant.
 */
static __always_inline __u32 pl_clamp_len(__u32 n, __u32 max)
{
	asm volatile("" : "+r"(n));
	if (n > max)
		n = max;
	return n;
}

#endif
