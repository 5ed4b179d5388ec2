/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ethernet and up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, old QinQ 0x9100). */
#ifndef PL_PARSE_L2_H
#define PL_PARSE_L2_H

#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include "pl_record.h"
#include "pkt.h"

#define PL_VLAN_ID_MASK 0x0fff

struct pl_vlan_tag {
	__be16 tci;
	__be16 proto; /* EtherType of what follows the tag */
};

static __always_inline bool pl_is_vlan(__u16 proto)
{
	return proto == ETH_P_8021Q || proto == ETH_P_8021AD || proto == ETH_P_QINQ1;
}

/* Records the first parse error only: it is the cause, later ones are consequences. */
static __always_inline void pl_fail(struct pl_record *r, __u8 reason)
{
	if (!r->parse_error)
		r->parse_error = reason;
}

/*
 * Fills MACs, VLAN ids and eth_type; *off becomes the L3 offset. Returns false when parsing must
 * stop. have_outer is true in TC when the kernel already moved the outer tag into skb->vlan_tci
 * (the caller stored it in vlan_id): a tag still in the packet is then the inner one. A third tag
 * is not walked: eth_type then says 0x8100 and no L3 is parsed.
 */
static __always_inline bool pl_parse_l2_at(const struct pl_pkt *p, struct pl_record *r, __u32 base,
					   __u32 *off, bool have_outer)
{
	struct ethhdr eth PL_ALIGNED;
	struct pl_vlan_tag tag PL_ALIGNED;
	__u32 o = base + sizeof(eth);
	__u16 proto;

	if (pl_load(p, base, &eth, sizeof(eth)) < 0) {
		pl_fail(r, PL_ERR_ETH_TRUNCATED);
		return false;
	}
	__builtin_memcpy(r->dst_mac, eth.h_dest, ETH_ALEN);
	__builtin_memcpy(r->src_mac, eth.h_source, ETH_ALEN);
	proto = bpf_ntohs(eth.h_proto);

	if (pl_is_vlan(proto)) {
		if (pl_load(p, o, &tag, sizeof(tag)) < 0)
			goto truncated;
		if (have_outer)
			r->inner_vlan_id = bpf_ntohs(tag.tci) & PL_VLAN_ID_MASK;
		else
			r->vlan_id = bpf_ntohs(tag.tci) & PL_VLAN_ID_MASK;
		proto = bpf_ntohs(tag.proto);
		o += sizeof(tag);

		if (pl_is_vlan(proto) && !have_outer) {
			if (pl_load(p, o, &tag, sizeof(tag)) < 0)
				goto truncated;
			r->inner_vlan_id = bpf_ntohs(tag.tci) & PL_VLAN_ID_MASK;
			proto = bpf_ntohs(tag.proto);
			o += sizeof(tag);
		}
	}
	r->eth_type = proto;
	*off = o;
	return true;

truncated:
	r->eth_type = proto;
	pl_fail(r, PL_ERR_VLAN_TRUNCATED);
	return false;
}

static __always_inline bool pl_parse_l2(const struct pl_pkt *p, struct pl_record *r, __u32 *off,
					bool have_outer)
{
	return pl_parse_l2_at(p, r, 0, off, have_outer);
}

#endif
