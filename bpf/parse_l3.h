/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 and IPv6 (with a bounded walk over extension headers). */
#ifndef PL_PARSE_L3_H
#define PL_PARSE_L3_H

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include "pl_record.h"
#include "pkt.h"
#include "parse_l2.h"

/* Extension headers walked before giving up with ipv6_ext_too_many. */
#define PL_IPV6_EXT_MAX 8

/* pl_record.ip6_ext bits (schema/columns.go). */
#define PL_EXT_HOP 0x01
#define PL_EXT_ROUTING 0x02
#define PL_EXT_FRAGMENT 0x04
#define PL_EXT_DSTOPTS 0x08
#define PL_EXT_AH 0x10
#define PL_EXT_OTHER 0x20

#define PL_IP_MF 0x2000
#define PL_IP_OFFSET 0x1fff

/* Where L3 left off, for L4. */
struct pl_l3 {
	__u32 l4_off;    /* first byte after the IP header and its extension headers */
	__u32 ip_end;    /* end of the IP packet according to its length field */
	__u32 end;       /* ip_end clamped to the bytes present: nothing past it is read */
	bool frag;       /* a fragment: L4 lengths may exceed this packet */
	bool later_frag; /* a non-first fragment: no L4 header follows */
};

/* First 8 bytes of any IPv6 extension header; for the fragment header, all of it. */
struct pl_ipv6_ext {
	__u8 nexthdr;
	__u8 len;       /* hdr ext len; reserved in the fragment header */
	__be16 frag;    /* fragment header: offset (13 bits, 8-byte units) << 3 | M */
	__be32 frag_id; /* fragment header: identification */
};

static __always_inline __u32 pl_min(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

/*
 * IPv4 checks, in order (first failure is the reason): 20 bytes present (ipv4_truncated),
 * version 4 (ipv4_bad_version), IHL >= 5 (ipv4_bad_ihl), total length >= IHL*4
 * (ipv4_bad_total_length), options present (ipv4_truncated) -- each of these stops parsing.
 * A total length beyond the packet is also ipv4_bad_total_length but parsing goes on inside the
 * bytes present (as tshark does): the L4 header is usually intact. Trailing bytes beyond the
 * total length (Ethernet padding) are ignored.
 */
static __always_inline bool pl_parse_ipv4(const struct pl_pkt *p, struct pl_record *r, __u32 off,
					  struct pl_l3 *l3)
{
	struct iphdr ip PL_ALIGNED;
	__u32 hlen, tot;
	__u16 fo;
	__u8 vihl;

	if (pl_load(p, off, &ip, sizeof(ip)) < 0) {
		pl_fail(r, PL_ERR_IPV4_TRUNCATED);
		return false;
	}
	vihl = *(__u8 *)&ip; /* not ip.version/ip.ihl: bitfield order differs between bpfel and bpfeb */
	if (vihl >> 4 != 4) {
		pl_fail(r, PL_ERR_IPV4_BAD_VERSION);
		return false;
	}
	/* The fixed fields sit at fixed offsets: record them even if IHL is bogus. */
	r->ip_version = 4;
	r->tos = ip.tos;
	r->ttl = ip.ttl;
	r->ip_proto = ip.protocol;
	tot = bpf_ntohs(ip.tot_len);
	/* BIG TCP (GRO/GSO packets above 64 KiB, seen at tcx): total length 0, the packet runs to
	 * the end of the skb (the kernel's iph_totlen). Only a packet too long for the field. */
	if (!tot && p->len > off && p->len - off > 0xffff)
		tot = p->len - off;
	r->ip_len = pl_min(tot, 0xffff); /* saturates, as for IPv6 */
	r->ip_id = bpf_ntohs(ip.id);
	fo = bpf_ntohs(ip.frag_off);
	r->ip_flags = fo >> 13; /* reserved, DF, MF -> bits 2, 1, 0 */
	r->frag_offset = (fo & PL_IP_OFFSET) << 3;
	r->src_addr[10] = r->src_addr[11] = 0xff;
	r->dst_addr[10] = r->dst_addr[11] = 0xff;
	__builtin_memcpy(&r->src_addr[12], &ip.saddr, 4);
	__builtin_memcpy(&r->dst_addr[12], &ip.daddr, 4);

	hlen = (vihl & 0x0f) * 4;
	if (hlen < sizeof(ip)) {
		pl_fail(r, PL_ERR_IPV4_BAD_IHL);
		return false;
	}
	if (tot < hlen) {
		pl_fail(r, PL_ERR_IPV4_BAD_TOTAL_LENGTH);
		return false;
	}
	if (off + hlen > p->len) {
		pl_fail(r, PL_ERR_IPV4_TRUNCATED);
		return false;
	}
	l3->l4_off = off + hlen;
	l3->ip_end = off + tot;
	l3->end = pl_min(l3->ip_end, p->len);
	if (l3->ip_end > p->len)
		pl_fail(r, PL_ERR_IPV4_BAD_TOTAL_LENGTH);
	l3->frag = fo & (PL_IP_MF | PL_IP_OFFSET);
	l3->later_frag = fo & PL_IP_OFFSET;
	return true;
}

static __always_inline __u8 pl_ipv6_ext_bit(__u8 nh)
{
	switch (nh) {
	case IPPROTO_HOPOPTS:
		return PL_EXT_HOP;
	case IPPROTO_ROUTING:
		return PL_EXT_ROUTING;
	case IPPROTO_FRAGMENT:
		return PL_EXT_FRAGMENT;
	case IPPROTO_DSTOPTS:
		return PL_EXT_DSTOPTS;
	case IPPROTO_AH:
		return PL_EXT_AH;
	case IPPROTO_MH:
	case 139: /* HIP */
	case 140: /* Shim6 */
		return PL_EXT_OTHER; /* same (len + 1) * 8 layout as hop-by-hop */
	}
	return 0; /* an upper-layer protocol, ESP (opaque) or no next header */
}

/*
 * IPv6 checks: 40 bytes present (ipv6_truncated, stops), version 6 (ipv6_bad_version, stops),
 * payload length beyond the packet (ipv6_truncated, goes on inside the bytes present). Stops at
 * the first next header: when it is an extension header (pl_ipv6_ext_bit), the caller walks the
 * chain with pl_ipv6_ext_walk from l3->l4_off.
 */
static __always_inline bool pl_parse_ipv6(const struct pl_pkt *p, struct pl_record *r, __u32 off,
					  struct pl_l3 *l3)
{
	struct ipv6hdr ip6 PL_ALIGNED;
	__u32 w0, plen, o;

	if (pl_load(p, off, &ip6, sizeof(ip6)) < 0) {
		pl_fail(r, PL_ERR_IPV6_TRUNCATED);
		return false;
	}
	w0 = bpf_ntohl(*(__be32 *)&ip6); /* version 4 | traffic class 8 | flow label 20 */
	if (w0 >> 28 != 6) {
		pl_fail(r, PL_ERR_IPV6_BAD_VERSION);
		return false;
	}
	r->ip_version = 6;
	r->tos = w0 >> 20;
	r->flow_label = w0 & 0xfffff;
	r->ttl = ip6.hop_limit;
	plen = bpf_ntohs(ip6.payload_len);
	r->ip_len = pl_min(plen + sizeof(ip6), 0xffff); /* saturates above 65495 payload bytes */
	__builtin_memcpy(r->src_addr, &ip6.saddr, 16);
	__builtin_memcpy(r->dst_addr, &ip6.daddr, 16);

	o = off + sizeof(ip6);
	/* 0 with a hop-by-hop header is a jumbogram (RFC 2675): its length is an option we do not
	 * read; 0 without one and more than 64 KiB present is BIG TCP's GRO packet at tcx (the
	 * kernel inserts no jumbo option there). Either runs to the end of the packet. */
	if (!plen && (ip6.nexthdr == IPPROTO_HOPOPTS || (p->len > o && p->len - o > 0xffff))) {
		l3->ip_end = p->len;
		if (p->len - o > 0xffff)
			r->ip_len = 0xffff;
	} else {
		l3->ip_end = o + plen;
	}
	l3->end = pl_min(l3->ip_end, p->len);
	if (l3->ip_end > p->len)
		pl_fail(r, PL_ERR_IPV6_TRUNCATED);
	r->ip_proto = ip6.nexthdr;
	l3->l4_off = o;
	return true;
}

/*
 * IPv6 extension headers, from l3->l4_off with next header r->ip_proto (pl_parse_ipv6 left both
 * there): up to PL_IPV6_EXT_MAX; one running past the IP payload is ipv6_ext_truncated, a ninth
 * is ipv6_ext_too_many. ip_proto becomes the last next-header value reached, l4_off what follows.
 */
static __always_inline bool pl_ipv6_ext_walk(const struct pl_pkt *p, struct pl_record *r,
					     struct pl_l3 *l3)
{
	struct pl_ipv6_ext ext;
	__u32 o = l3->l4_off, len;
	__u8 nh = r->ip_proto, bit;
	__u16 fo;

#pragma clang loop unroll(disable)
	for (int i = 0; i < PL_IPV6_EXT_MAX; i++) {
		bit = pl_ipv6_ext_bit(nh);
		if (!bit)
			break;
		if (o + sizeof(ext) > l3->end || pl_load_slow(p, o, &ext, sizeof(ext)) < 0) {
			pl_fail(r, PL_ERR_IPV6_EXT_TRUNCATED);
			return false;
		}
		if (nh == IPPROTO_FRAGMENT) {
			fo = bpf_ntohs(ext.frag);
			r->frag_offset = fo & 0xfff8;
			r->ip_flags = fo & 1;
			r->ip_id = bpf_ntohl(ext.frag_id);
			l3->frag = true;
			l3->later_frag = fo & 0xfff8;
			len = sizeof(ext);
		} else if (nh == IPPROTO_AH) {
			len = ((__u32)ext.len + 2) * 4;
		} else {
			len = ((__u32)ext.len + 1) * 8;
		}
		if (o + len > l3->end) {
			pl_fail(r, PL_ERR_IPV6_EXT_TRUNCATED);
			return false;
		}
		r->ip6_ext |= bit;
		nh = ext.nexthdr;
		r->ip_proto = nh;
		o += len;
		/* Past a non-first fragment's header is fragment data, not headers. */
		if (l3->later_frag)
			break;
	}
	l3->l4_off = o;
	if (!l3->later_frag && pl_ipv6_ext_bit(nh)) {
		pl_fail(r, PL_ERR_IPV6_EXT_TOO_MANY);
		return false;
	}
	return true;
}

#endif
