/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Encapsulations, walked in the same pass as the rest: VXLAN (UDP 4789, 8472), Geneve (UDP 6081,
 * options skipped), GRE (checksum, key, sequence; IPv4, IPv6, Ethernet 0x6558, MPLS, ERSPAN II
 * 0x88be and III 0x22eb), IPv4/IPv6 in IPv4/IPv6 (protocols 4 and 41) and MPLS label stacks.
 * The record keeps the innermost packet in the ordinary columns and the encapsulation it was
 * found in in tunnel_* (schema/columns.go), up to PL_TUNNEL_MAX_DEPTH levels; tunnel_src and
 * tunnel_dst in the trailer (struct pl_record_tunnel in pl_scratch.tun), which the record carries
 * exactly when tunnel_depth != 0, so packets that are not tunnelled do not pay for it.
 */
#ifndef PL_PARSE_TUN_H
#define PL_PARSE_TUN_H

#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "pl_record.h"
#include "maps.h"
#include "pkt.h"
#include "parse_l2.h"
#include "parse_l3.h"

#define PL_ETH_P_TEB 0x6558    /* transparent Ethernet bridging */
#define PL_ETH_P_MPLS_UC 0x8847
#define PL_ETH_P_MPLS_MC 0x8848
#define PL_ETH_P_ERSPAN2 0x88be
#define PL_ETH_P_ERSPAN3 0x22eb
#define PL_UDP_VXLAN 4789
#define PL_UDP_VXLAN_LINUX 8472
#define PL_UDP_GENEVE 6081
#define PL_MPLS_MAX 8 /* labels walked before tunnel_too_deep */

#define PL_GRE_CSUM 0x8000
#define PL_GRE_ROUTING 0x4000
#define PL_GRE_KEY 0x2000
#define PL_GRE_SEQ 0x1000
#define PL_GRE_VERSION 0x0007

/* What follows an encapsulation header: where, and what (an EtherType). */
struct pl_encap {
	__u32 off;
	__u16 next;
	__u8 type; /* PL_TUN_* */
	__u32 id;
};

static __always_inline bool pl_udp_tunnel_port(__u16 port)
{
	return port == PL_UDP_VXLAN || port == PL_UDP_VXLAN_LINUX || port == PL_UDP_GENEVE;
}

/*
 * Cheap test on the inline path: could the IP packet just parsed carry an encapsulation? For UDP
 * it reads the two ports (4 bytes). The walk itself (pl_tunnel_walk) runs in a global function.
 */
static __always_inline bool pl_tunnel_candidate(const struct pl_pkt *p, const struct pl_record *r,
						const struct pl_l3 *l3)
{
	__be16 ports[2] PL_ALIGNED;

	if (l3->later_frag)
		return false;
	switch (r->ip_proto) {
	case IPPROTO_IPIP:
	case IPPROTO_IPV6:
	case IPPROTO_GRE:
		return true;
	case IPPROTO_UDP:
		if (l3->l4_off + 8 > l3->end || pl_load(p, l3->l4_off, ports, sizeof(ports)) < 0)
			return false;
		return pl_udp_tunnel_port(bpf_ntohs(ports[0])) || pl_udp_tunnel_port(bpf_ntohs(ports[1]));
	}
	return false;
}

/*
 * Looks at the IP packet r/l3 describe for an encapsulation header. Returns 1 and fills e when
 * one is there, 0 when the packet is to be recorded as it is (also for a truncated or unknown
 * encapsulation header, with tunnel_truncated set: its IP payload is then what is recorded).
 */
static __always_inline int pl_decap(const struct pl_pkt *p, struct pl_record *r,
				    const struct pl_l3 *l3, struct pl_encap *e)
{
	__u8 h[16] PL_ALIGNED;
	__u32 o = l3->l4_off, hl;
	__u16 fl, sp, dp;

	if (l3->later_frag)
		return 0;
	switch (r->ip_proto) {
	case IPPROTO_IPIP:
		e->off = o;
		e->next = ETH_P_IP;
		e->type = r->ip_version == 4 ? PL_TUN_IPIP : PL_TUN_X4IN6;
		e->id = 0;
		return 1;
	case IPPROTO_IPV6:
		e->off = o;
		e->next = ETH_P_IPV6;
		e->type = r->ip_version == 4 ? PL_TUN_X6IN4 : PL_TUN_IP6IP6;
		e->id = 0;
		return 1;
	case IPPROTO_GRE:
		if (o + 4 > l3->end || pl_load(p, o, h, 4) < 0)
			goto truncated;
		fl = (__u16)h[0] << 8 | h[1];
		if (fl & (PL_GRE_ROUTING | PL_GRE_VERSION))
			return 0; /* source-routed GRE (RFC 1701) or PPTP's enhanced GRE: not followed */
		e->next = (__u16)h[2] << 8 | h[3];
		e->type = PL_TUN_GRE;
		e->id = 0;
		hl = 4;
		if (fl & PL_GRE_CSUM)
			hl += 4;
		if (fl & PL_GRE_KEY) {
			if (o + hl + 4 > l3->end || pl_load(p, o + hl, h, 4) < 0)
				goto truncated;
			e->id = bpf_ntohl(*(__be32 *)h);
			hl += 4;
		}
		if (fl & PL_GRE_SEQ)
			hl += 4;
		o += hl;
		if (e->next == PL_ETH_P_ERSPAN2 || e->next == PL_ETH_P_ERSPAN3) {
			/* ver 4 | vlan 12 | cos 3 | en/bso 2 | t 1 | session id 10, then 4 (II) or 8 (III)
			 * more bytes; III with the O bit has an 8-byte platform sub-header. */
			if (o + 12 > l3->end || pl_load(p, o, h, 12) < 0)
				goto truncated;
			e->id = ((__u32)h[2] << 8 | h[3]) & 0x3ff;
			if (e->next == PL_ETH_P_ERSPAN2) {
				e->type = PL_TUN_ERSPAN2;
				o += 8;
			} else {
				e->type = PL_TUN_ERSPAN3;
				o += h[11] & 1 ? 20 : 12;
			}
			e->next = PL_ETH_P_TEB;
		}
		e->off = o;
		return 1;
	case IPPROTO_UDP:
		/* UDP header + 8 bytes of VXLAN or of Geneve's fixed part */
		if (o + 16 > l3->end || pl_load(p, o, h, 16) < 0)
			return 0; /* the UDP parse says what is wrong, if anything */
		sp = (__u16)h[0] << 8 | h[1];
		dp = (__u16)h[2] << 8 | h[3];
		if (dp == PL_UDP_GENEVE || (sp == PL_UDP_GENEVE && !pl_udp_tunnel_port(dp))) {
			if (h[8] >> 6) /* version 0 only */
				return 0;
			e->type = PL_TUN_GENEVE;
			e->next = (__u16)h[10] << 8 | h[11];
			e->off = o + 16 + (h[8] & 0x3f) * 4;
		} else if (pl_udp_tunnel_port(dp) || pl_udp_tunnel_port(sp)) {
			e->type = PL_TUN_VXLAN;
			e->next = PL_ETH_P_TEB;
			e->off = o + 16;
		} else {
			return 0;
		}
		e->id = (__u32)h[12] << 16 | (__u32)h[13] << 8 | h[14];
		return 1;
	}
	return 0;

truncated:
	pl_fail(r, PL_ERR_TUNNEL_TRUNCATED);
	return 0;
}

/* The network-layer columns an inner IP header fills, cleared of the outer header's. */
static __always_inline void pl_clear_l3(struct pl_record *r)
{
	__builtin_memset(r->src_addr, 0, sizeof(r->src_addr));
	__builtin_memset(r->dst_addr, 0, sizeof(r->dst_addr));
	r->flow_label = 0;
	r->ip_id = 0;
	r->ip_len = 0;
	r->frag_offset = 0;
	r->ip_version = 0;
	r->ip_proto = 0;
	r->ttl = 0;
	r->tos = 0;
	r->ip_flags = 0;
	r->ip6_ext = 0;
}

/*
 * An MPLS label stack at off: up to PL_MPLS_MAX labels to the bottom one, whose label becomes
 * tunnel_id; what follows is IPv4 or IPv6 by its first nibble (anything else -- a pseudowire
 * control word, Ethernet -- is not followed). Returns the EtherType to go on with, 0 to stop.
 */
static __always_inline __u16 pl_mpls_walk(const struct pl_pkt *p, struct pl_record *r, __u32 *off)
{
	__u8 w[4] PL_ALIGNED;
	__u32 o = *off;

#pragma clang loop unroll(disable)
	for (int i = 0; i < PL_MPLS_MAX; i++) {
		if (pl_load_slow(p, o, w, 4) < 0) { /* helper: direct access in this loop blows up the verifier states */
			pl_fail(r, PL_ERR_TUNNEL_TRUNCATED);
			return 0;
		}
		o += 4;
		if (w[2] & 1) { /* bottom of stack */
			r->tunnel_id = (__u32)w[0] << 12 | (__u32)w[1] << 4 | w[2] >> 4;
			*off = o;
			if (pl_load_slow(p, o, w, 1) < 0) {
				pl_fail(r, PL_ERR_TUNNEL_TRUNCATED);
				return 0;
			}
			switch (w[0] >> 4) {
			case 4:
				return ETH_P_IP;
			case 6:
				return ETH_P_IPV6;
			}
			return 0;
		}
	}
	pl_fail(r, PL_ERR_TUNNEL_TOO_DEEP);
	return 0;
}

/* The hooks' global functions for IPv6 extension headers (pl.c). */
struct pl_scratch;
int pl_ipv6_ext_xdp(struct xdp_md *ctx, __u32 len, struct pl_scratch *s, struct pl_l3 *l3);
int pl_ipv6_ext_tc(struct __sk_buff *ctx, __u32 len, struct pl_scratch *s, struct pl_l3 *l3);

static __always_inline bool pl_ipv6_ext(const struct pl_pkt *p, struct pl_scratch *s, struct pl_l3 *l3)
{
	if (p->xdp)
		return pl_ipv6_ext_xdp(p->ctx, p->len, s, l3);
	return pl_ipv6_ext_tc(p->ctx, p->len, s, l3);
}

/*
 * Called when pl_tunnel_candidate said yes (next = 0: the IP packet r/l3 describe is parsed) or
 * with an MPLS stack at off (next = PL_ETH_P_MPLS_UC, straight after L2). Each round takes off
 * one encapsulation -- recording it in tunnel_* and counting tunnel_depth -- and parses what is
 * inside (Ethernet and VLAN tags, MPLS, IPv4, IPv6 and its extension headers) into the ordinary
 * columns, which the inner headers overwrite (an inner packet without Ethernet keeps the outer
 * MACs; eth_type becomes the inner packet's). Returns true when l3 describes an IP packet whose
 * L4 is to be parsed: the innermost one, or the one at which the walk stopped (a deeper
 * encapsulation than PL_TUNNEL_MAX_DEPTH is tunnel_too_deep, and recorded as found there).
 * A bounded loop of one round per level; it runs in a global function (pl.c), verified once.
 */
static __always_inline bool pl_tunnel_walk(const struct pl_pkt *p, struct pl_scratch *s,
					   struct pl_record *r, struct pl_l3 *l3, __u32 off, __u16 next)
{
	struct pl_encap e = {};
	__u32 l2;

#pragma clang loop unroll(disable)
	for (int i = 0; i <= PL_TUNNEL_MAX_DEPTH; i++) {
		if (!next) {
			if (!pl_decap(p, r, l3, &e))
				return true;
			if (r->tunnel_depth >= PL_TUNNEL_MAX_DEPTH) {
				pl_fail(r, PL_ERR_TUNNEL_TOO_DEEP);
				return true;
			}
			r->tunnel_depth += 1;
			r->tunnel_type = e.type;
			r->tunnel_id = e.id;
			/* The whole trailer: it exists from tunnel_depth 1 on, and pl_build zeroed only the header. */
			__builtin_memcpy(s->tun.tunnel_src, r->src_addr, 16);
			__builtin_memcpy(s->tun.tunnel_dst, r->dst_addr, 16);
			r->tunnel_ttl = r->ttl;
			pl_clear_l3(r);
			r->payload_len = 0;
			off = e.off;
			next = e.next;
		}
		if (next == PL_ETH_P_TEB) {
			r->vlan_id = 0;
			r->inner_vlan_id = 0;
			if (!pl_parse_l2_at(p, r, off, &l2, false))
				return false;
			off = l2;
			next = r->eth_type;
		}
		if (next == PL_ETH_P_MPLS_UC || next == PL_ETH_P_MPLS_MC) {
			if (r->tunnel_depth >= PL_TUNNEL_MAX_DEPTH) {
				pl_fail(r, PL_ERR_TUNNEL_TOO_DEEP);
				return false;
			}
			/* Straight over Ethernet no IP header carried it: the trailer is there, all zero. Under
			 * another encapsulation it keeps that one's addresses, as tunnel_src documents. */
			if (r->tunnel_depth == 0)
				__builtin_memset(&s->tun, 0, sizeof(s->tun));
			r->tunnel_depth += 1;
			r->tunnel_type = PL_TUN_MPLS;
			next = pl_mpls_walk(p, r, &off);
		}
		if (next != ETH_P_IP && next != ETH_P_IPV6)
			return false; /* not IP inside: L2 only */
		r->eth_type = next;
		if (next == ETH_P_IP) {
			if (!pl_parse_ipv4(p, r, off, l3))
				return false;
		} else {
			if (!pl_parse_ipv6(p, r, off, l3))
				return false;
			if (pl_ipv6_ext_bit(r->ip_proto) && !pl_ipv6_ext(p, s, l3))
				return false;
		}
		next = 0;
	}
	return true;
}

#endif
