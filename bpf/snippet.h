/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * L7 candidates: decide what the payload looks like and copy its first bytes after the record.
 * The kernel only classifies by ports and a few leading bytes; the parsing happens in user space
 * (l7/), which applies the same rules. DNS is tested first, then TLS, then HTTP.
 */
#ifndef PL_SNIPPET_H
#define PL_SNIPPET_H

#include <linux/in.h>
#include "pl_record.h"
#include "maps.h"
#include "stats.h"
#include "pkt.h"
#include "parse_l4.h"

#define PL_DNS_PORT 53

/* The first four payload bytes as a big-endian word, so methods compare as one constant. */
#define PL_W(a, b, c, d) ((__u32)(a) << 24 | (__u32)(b) << 16 | (__u32)(c) << 8 | (__u32)(d))

/* One of GET/HEAD/POST/PUT/DELETE/CONNECT/OPTIONS/TRACE/PATCH followed by a space. */
static __always_inline bool pl_is_http(const __u8 *b)
{
	/* b has 8 bytes, zero past the payload: a zero never matches the space, so no length check. */
	__u32 w = PL_W(b[0], b[1], b[2], b[3]);

	switch (w) {
	case PL_W('G', 'E', 'T', ' '):
	case PL_W('P', 'U', 'T', ' '):
		return true;
	case PL_W('H', 'E', 'A', 'D'):
	case PL_W('P', 'O', 'S', 'T'):
		return b[4] == ' ';
	case PL_W('T', 'R', 'A', 'C'):
		return b[4] == 'E' && b[5] == ' ';
	case PL_W('P', 'A', 'T', 'C'):
		return b[4] == 'H' && b[5] == ' ';
	case PL_W('D', 'E', 'L', 'E'):
		return b[4] == 'T' && b[5] == 'E' && b[6] == ' ';
	case PL_W('C', 'O', 'N', 'N'):
		return b[4] == 'E' && b[5] == 'C' && b[6] == 'T' && b[7] == ' ';
	case PL_W('O', 'P', 'T', 'I'):
		return b[4] == 'O' && b[5] == 'N' && b[6] == 'S' && b[7] == ' ';
	}
	return false;
}

static __always_inline __u8 pl_classify(const struct pl_pkt *p, const struct pl_record *r,
					const struct pl_l4 *l4, __u32 avail)
{
	__u8 b[8] PL_ALIGNED = {};
	__u32 n;

	if (r->src_port == PL_DNS_PORT || r->dst_port == PL_DNS_PORT)
		return PL_L7_DNS;
	if (r->ip_proto != IPPROTO_TCP)
		return PL_L7_NONE;
	if (avail >= sizeof(b)) {
		if (pl_load(p, l4->off, b, sizeof(b)) < 0)
			return PL_L7_NONE;
	} else {
		n = pl_clamp_len(avail, sizeof(b));
		if (n == 0 || pl_load_slow(p, l4->off, b, n) < 0)
			return PL_L7_NONE;
	}
	if (b[0] == 0x16 && b[1] == 0x03 && b[5] == 0x01) /* a ClientHello: l7.LooksLikeTLSClientHello */
		return PL_L7_TLS;
	if (pl_is_http(b))
		return PL_L7_HTTP;
	return PL_L7_NONE;
}

/* The direct copy moves this many bytes per bounds check. */
#define PL_COPY_BLOCK 64

/*
 * Copies n (a constant) bytes in 8-byte words or less (see PL_ALIGNED in pkt.h). Neither end is
 * really aligned: the packet side as in pl_load, and the destination is a record's snippet in the
 * stage (a map value), where records follow each other at any offset; the verifier allows
 * misaligned map value access on x86-64 as it does packet access. Without the hint clang stores
 * single bytes: `to + i` in a loop has no alignment it can prove.
 */
#define PL_COPY_WORDS(to, src, n) \
	__builtin_memcpy(__builtin_assume_aligned(to, 8), __builtin_assume_aligned(src, 8), n)

/*
 * Copies n <= PL_SNIPPET_MAX bytes at off to to by direct packet access: 64-byte blocks and then
 * the 64 bytes that end at n, overlapping the last block copied (below 64 bytes: 8-byte words,
 * then the word that ends at n; below 8, the caller's helper). The overlapping tail, rather
 * than words, then 4, 2 and 1 bytes after the blocks, keeps the paths the verifier walks few
 * (loading took 3x longer with the byte-exact tail). No helper call: a call to
 * bpf_xdp_load_bytes costs ~35 ns here (the helper, bpf_xdp_pointer and memcpy, each returning
 * through this VM's return thunk), more than moving a whole 1 KiB snippet inline. false: not all
 * in the linear part (the caller then uses the helper, which also reads fragments).
 */
static __always_inline bool pl_copy_direct(const struct pl_pkt *p, __u32 off, __u8 *to, __u32 n)
{
	void *end = p->data_end;
	__u8 *src, *s;
	__u32 i = 0, j;

	if (off >= PL_DIRECT_MAX_OFF || n > PL_SNIPPET_MAX)
		return false;
	asm volatile("" : "+r"(off)); /* as in pl_load: keep the mask the verifier needs */
	off &= PL_DIRECT_MAX_OFF - 1;
	src = (__u8 *)p->data + off;
	if (n >= PL_COPY_BLOCK) {
#pragma clang loop unroll(disable)
		for (j = 0; j < PL_SNIPPET_MAX / PL_COPY_BLOCK; j++) {
			if (i + PL_COPY_BLOCK > n)
				break;
			s = src + i;
			if ((void *)(s + PL_COPY_BLOCK) > end)
				return false;
			PL_COPY_WORDS(to + i, s, PL_COPY_BLOCK);
			i += PL_COPY_BLOCK;
		}
		i = n - PL_COPY_BLOCK;
		s = src + i;
		if ((void *)(s + PL_COPY_BLOCK) > end)
			return false;
		PL_COPY_WORDS(to + i, s, PL_COPY_BLOCK);
		return true;
	}
	if (n >= 8) {
#pragma clang loop unroll(disable)
		for (j = 0; j < PL_COPY_BLOCK / 8 - 1; j++) {
			if (i + 8 > n)
				break;
			s = src + i;
			if ((void *)(s + 8) > end)
				return false;
			PL_COPY_WORDS(to + i, s, 8);
			i += 8;
		}
		i = n - 8;
		s = src + i;
		if ((void *)(s + 8) > end)
			return false;
		PL_COPY_WORDS(to + i, s, 8);
		return true;
	}
	return false; /* under 8 bytes (no classified payload is that short): the helper */
}

/*
 * Sets l7_kind and copies min(payload present, PL_SNIPPET_MAX) bytes behind the record. A failed
 * copy is counted and the record goes out without its snippet (l7_kind kept: the leading bytes
 * were read).
 */
static __always_inline void pl_snippet(const struct pl_pkt *p, struct pl_scratch *s,
				       const struct pl_l4 *l4)
{
	struct pl_record *r = &s->rec;
	__u32 avail, n;

	if (l4->end <= l4->off)
		return;
	avail = l4->end - l4->off;
	r->l7_kind = pl_classify(p, r, l4, avail);
	if (r->l7_kind == PL_L7_NONE)
		return;
	n = pl_clamp_len(avail, PL_SNIPPET_MAX);
	if (pl_copy_direct(p, l4->off, s->snippet, n)) {
		r->snippet_len = n;
		return;
	}
	if (n == 0 || pl_load_slow(p, l4->off, s->snippet, n) < 0) {
		pl_count(PL_STAT_SNIPPET_COPY_FAILED);
		return;
	}
	r->snippet_len = n;
}

#endif
