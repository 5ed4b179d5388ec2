/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * L7 candidates: decide what the payload looks like and copy its first bytes after the record.
 * The kernel only classifies by ports and a few leading bytes; the parsing happens in user space
 * (record/l7), which applies the same rules (record.ClassifyL7 is the mirror of pl_classify). DNS
 * is tested first (by port), then for UDP a QUIC client Initial and an SSDP request, for TCP a TLS
 * ClientHello and an HTTP request.
 */
#ifndef PL_SNIPPET_H
#define PL_SNIPPET_H

#include <linux/in.h>
#include "pl_record.h"
#include "maps.h"
#include "stats.h"
#include "pkt.h"
#include "parse_l4.h"
#include "tls_cont.h"

/* DNS, multicast DNS (RFC 6762), LLMNR (RFC 4795): one message format. l7.IsDNSPort */
static __always_inline bool pl_dns_port(__u16 port)
{
	return port == 53 || port == 5353 || port == 5355;
}

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

/*
 * A QUIC v1 or v2 client Initial: long header with the fixed bit, the version's Initial type, a
 * destination connection id of 8..20 bytes (l7.LooksLikeQUICInitial).
 */
static __always_inline bool pl_is_quic_initial(const __u8 *b)
{
	__u32 v = PL_W(b[1], b[2], b[3], b[4]);

	if (b[5] < 8 || b[5] > 20)
		return false;
	if (v == 0x00000001)
		return (b[0] & 0xf0) == 0xc0;
	if (v == 0x6b3343cf)
		return (b[0] & 0xf0) == 0xd0;
	return false;
}

/* HTTP over UDP (SSDP): "M-SEARCH" or "NOTIFY " (l7.LooksLikeSSDPRequest). */
static __always_inline bool pl_is_ssdp(const __u8 *b)
{
	/* Whole words: byte compares of both branches, merged, made clang index b by a register. */
	__u32 w = PL_W(b[0], b[1], b[2], b[3]), w2 = PL_W(b[4], b[5], b[6], b[7]);

	if (w == PL_W('M', '-', 'S', 'E'))
		return w2 == PL_W('A', 'R', 'C', 'H');
	if (w == PL_W('N', 'O', 'T', 'I'))
		return (w2 & 0xffffff00) == PL_W('F', 'Y', ' ', 0);
	return false;
}

static __always_inline __u8 pl_classify(const struct pl_pkt *p, const struct pl_record *r,
					const struct pl_l4 *l4, __u32 avail)
{
	__u8 b[8] PL_ALIGNED = {};
	__u32 n;

	if (pl_dns_port(r->src_port) || pl_dns_port(r->dst_port))
		return PL_L7_DNS;
	if (r->ip_proto != IPPROTO_TCP && r->ip_proto != IPPROTO_UDP)
		return PL_L7_NONE;
	if (avail >= sizeof(b)) {
		if (pl_load(p, l4->off, b, sizeof(b)) < 0)
			return PL_L7_NONE;
	} else {
		n = pl_clamp_len(avail, sizeof(b));
		if (n == 0 || pl_load_small(p, l4->off, b, n) < 0)
			return PL_L7_NONE;
	}
	if (r->ip_proto == IPPROTO_UDP) {
		if (pl_is_quic_initial(b))
			return PL_L7_QUIC;
		if (pl_is_ssdp(b))
			return PL_L7_HTTP;
		return PL_L7_NONE;
	}
	if (b[0] == 0x16 && b[1] == 0x03 && b[5] == 0x01) /* a ClientHello: l7.LooksLikeTLSClientHello */
		return PL_L7_TLS;
	/* ChangeCipherSpec, then a handshake record (a second ClientHello): l7.LooksLikeCCSThenHandshake */
	if (b[0] == 0x14 && b[1] == 0x03 && b[3] == 0 && b[4] == 1 && b[5] == 1 && b[6] == 0x16 && b[7] == 0x03)
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
 * The copy pl_copy_direct could not do: under 8 bytes (pl_load_small), or bytes outside the
 * linear part (the helper, which reads fragments; in pl_xdp_linear there are none: -1, and no
 * helper call site in its parser, see pl_load).
 */
static __always_inline long pl_copy_rest(const struct pl_pkt *p, __u32 off, __u8 *to, __u32 n)
{
	if (n == 0)
		return -1;
	if (n < 8)
		return pl_load_small(p, off, to, n);
	if (p->linear)
		return -1;
	return pl_load_slow(p, off, to, n);
}

/*
 * Sets l7_kind and copies min(payload present, PL_SNIPPET_HEAD_MAX) bytes behind the record, a
 * QUIC Initial, TLS and a TLS continuation up to PL_SNIPPET_MAX (its CRYPTO frames may lie
 * anywhere in it; a split ClientHello needs every byte). A failed copy is
 * counted and the record goes out without its snippet (l7_kind kept: the leading bytes were read).
 */
static __always_inline void pl_snippet(const struct pl_pkt *p, struct pl_scratch *s,
				       const struct pl_l4 *l4)
{
	struct pl_record *r = &s->rec;
	__u8 *to;
	__u32 avail, n;

	if (l4->end <= l4->off)
		return;
	avail = l4->end - l4->off;
	r->l7_kind = pl_classify(p, r, l4, avail);
	if (r->l7_kind == PL_L7_NONE) {
		if (r->ip_proto != IPPROTO_TCP || !pl_tls_cont_match(r, avail))
			return;
		r->l7_kind = PL_L7_TLS_CONT;
	}
	/* A ClientHello's segments whole (tls_cont.h): a post-quantum one fills its first segment. */
	n = pl_clamp_len(avail, r->l7_kind >= PL_L7_TLS && r->l7_kind != PL_L7_HTTP ? PL_SNIPPET_MAX
										      : PL_SNIPPET_HEAD_MAX);
	to = pl_snippet_at(s); /* after the tunnel trailer, if any */
	if (!pl_copy_direct(p, l4->off, to, n) && pl_copy_rest(p, l4->off, to, n) < 0) {
		pl_count(PL_STAT_SNIPPET_COPY_FAILED);
		return;
	}
	r->snippet_len = n;
	if (r->l7_kind == PL_L7_TLS)
		pl_tls_cont_start(s, to, avail);
}

#endif
