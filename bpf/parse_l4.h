/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* TCP, UDP, ICMP and ICMPv6 headers. */
#ifndef PL_PARSE_L4_H
#define PL_PARSE_L4_H

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "pl_record.h"
#include "pkt.h"
#include "parse_l3.h"

/* The L4 payload bytes present in this packet: [off, end). */
struct pl_l4 {
	__u32 off;
	__u32 end;
};

/* ICMP and ICMPv6: type, code, checksum and the 4-byte rest-of-header every message has. */
#define PL_ICMP_HLEN 8

/*
 * A TCP or UDP header cut short: its ports, when their 4 bytes are there (tshark shows them too).
 * Only on this error path: the whole header is loaded otherwise.
 */
static __always_inline void pl_partial_ports(const struct pl_pkt *p, struct pl_record *r, __u32 o,
					     __u32 end)
{
	__be16 ports[2] PL_ALIGNED;

	if (o + sizeof(ports) <= end && pl_load(p, o, ports, sizeof(ports)) == 0) {
		r->src_port = bpf_ntohs(ports[0]);
		r->dst_port = bpf_ntohs(ports[1]);
	}
}

static __always_inline void pl_set_payload_len(struct pl_record *r, __u32 from, __u32 ip_end)
{
	r->payload_len = ip_end > from ? pl_min(ip_end - from, 0xffff) : 0;
}

/*
 * TCP: 20 bytes inside the IP payload (tcp_truncated; the ports are kept if their 4 bytes are
 * there), data offset >= 5 and the header (with
 * options) inside the IP packet by its length field (tcp_bad_data_offset), options present in the
 * packet (tcp_truncated). The fixed fields are recorded before the data offset is judged.
 */
static __always_inline bool pl_parse_tcp(const struct pl_pkt *p, struct pl_record *r,
					 const struct pl_l3 *l3, struct pl_l4 *l4)
{
	struct tcphdr th PL_ALIGNED;
	__u32 o = l3->l4_off, hlen;
	__u16 w;

	if (o + sizeof(th) > l3->end || pl_load(p, o, &th, sizeof(th)) < 0) {
		pl_partial_ports(p, r, o, l3->end);
		pl_fail(r, PL_ERR_TCP_TRUNCATED);
		return false;
	}
	r->src_port = bpf_ntohs(th.source);
	r->dst_port = bpf_ntohs(th.dest);
	r->tcp_seq = bpf_ntohl(th.seq);
	r->tcp_ack = bpf_ntohl(th.ack_seq);
	r->tcp_window = bpf_ntohs(th.window);
	/* Bytes 12-13: data offset 4 | reserved 3 | AE CWR ECE URG ACK PSH RST SYN FIN. */
	w = bpf_ntohs(*(__be16 *)((__u8 *)&th + 12));
	r->tcp_flags = w & 0x0fff;
	hlen = (w >> 12) * 4;
	if (hlen < sizeof(th) || o + hlen > l3->ip_end) {
		pl_fail(r, PL_ERR_TCP_BAD_DATA_OFFSET);
		return false;
	}
	if (o + hlen > l3->end) {
		pl_fail(r, PL_ERR_TCP_TRUNCATED);
		return false;
	}
	pl_set_payload_len(r, o + hlen, l3->ip_end);
	l4->off = o + hlen;
	l4->end = l3->end;
	return true;
}

/*
 * UDP: 8 bytes inside the IP payload (udp_truncated; ports kept as for TCP); length >= 8 and, unless the datagram is
 * fragmented, not beyond the IP payload by its length field (udp_bad_length).
 */
static __always_inline bool pl_parse_udp(const struct pl_pkt *p, struct pl_record *r,
					 const struct pl_l3 *l3, struct pl_l4 *l4)
{
	struct udphdr uh PL_ALIGNED;
	__u32 o = l3->l4_off, ulen;

	if (o + sizeof(uh) > l3->end || pl_load(p, o, &uh, sizeof(uh)) < 0) {
		pl_partial_ports(p, r, o, l3->end);
		pl_fail(r, PL_ERR_UDP_TRUNCATED);
		return false;
	}
	r->src_port = bpf_ntohs(uh.source);
	r->dst_port = bpf_ntohs(uh.dest);
	ulen = bpf_ntohs(uh.len);
	if (ulen < sizeof(uh) || (!l3->frag && o + ulen > l3->ip_end)) {
		pl_fail(r, PL_ERR_UDP_BAD_LENGTH);
		return false;
	}
	r->payload_len = ulen - sizeof(uh);
	l4->off = o + sizeof(uh);
	l4->end = pl_min(o + ulen, l3->end);
	return true;
}

static __always_inline void pl_parse_icmp(const struct pl_pkt *p, struct pl_record *r,
					  const struct pl_l3 *l3)
{
	__u8 h[PL_ICMP_HLEN] PL_ALIGNED;
	__u32 o = l3->l4_off;

	if (o + sizeof(h) > l3->end || pl_load(p, o, h, sizeof(h)) < 0) {
		pl_fail(r, PL_ERR_ICMP_TRUNCATED);
		return;
	}
	r->icmp_type = h[0];
	r->icmp_code = h[1];
	pl_set_payload_len(r, o + sizeof(h), l3->ip_end);
}

/*
 * Returns true when l4 holds a TCP or UDP payload worth classifying. A non-first fragment or an
 * unknown protocol gets payload_len = the IP payload after all headers, and no L4 fields.
 */
static __always_inline bool pl_parse_l4(const struct pl_pkt *p, struct pl_record *r,
					const struct pl_l3 *l3, struct pl_l4 *l4)
{
	if (l3->later_frag) {
		pl_set_payload_len(r, l3->l4_off, l3->ip_end);
		return false;
	}
	switch (r->ip_proto) {
	case IPPROTO_TCP:
		return pl_parse_tcp(p, r, l3, l4);
	case IPPROTO_UDP:
		return pl_parse_udp(p, r, l3, l4);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		pl_parse_icmp(p, r, l3);
		return false;
	}
	pl_set_payload_len(r, l3->l4_off, l3->ip_end);
	return false;
}

#endif
