package record

import (
	"net/netip"
	"time"
)

// FlowMessageVersion is the version of FlowMessage this build writes and reads.
const FlowMessageVersion = 1

// FlowMessage is one Kafka record on the flows topic (JSON): the flows of one export of one
// collector run, at most flowsPerMessage of them. Rows are DELTAS: each counts the packets,
// bytes and TCP flags of its flow since that flow's previous export by the same run
// (collector_id), so summing rows over any set of exports is exact -- the ingester and SQL only
// ever sum. An export is retried whole (the same deltas, plus what came since) if Kafka does not
// acknowledge it, so a row is never lost for a produce error; the ingester's insert dedup tokens
// keep a replayed Kafka record from counting twice.
type FlowMessage struct {
	Version     int       `json:"version"`
	Time        time.Time `json:"time"` // when the map was read
	Host        string    `json:"host"`
	Iface       string    `json:"iface"`
	CollectorID uint64    `json:"collector_id"`
	ExportSeq   uint64    `json:"export_seq"` // per run, counts exports; the chunks of one share it
	Flows       []FlowRow `json:"flows"`
}

// FlowRow is one flow's delta. first_seen_ns is when the kernel entry was created (its first
// packet), last_seen_ns its latest packet, both Unix ns (the kernel's monotonic time plus the
// collector's wall-clock offset).
type FlowRow struct {
	Ifindex     uint32     `json:"ifindex"`
	VlanID      uint16     `json:"vlan_id"`
	TunnelID    uint32     `json:"tunnel_id,omitempty"` // of the innermost packet (bpf/parse_tun.h); 0: not tunnelled
	IPVersion   uint8      `json:"ip_version"`
	IPProto     uint8      `json:"ip_proto"`
	SrcAddr     netip.Addr `json:"src_addr"` // IPv4 as IPv4 (not mapped); "::" for non-IP frames
	DstAddr     netip.Addr `json:"dst_addr"`
	SrcPort     uint16     `json:"src_port"`
	DstPort     uint16     `json:"dst_port"`
	Packets     uint64     `json:"packets"`
	Bytes       uint64     `json:"bytes"`
	SYN         uint64     `json:"syn"`
	FIN         uint64     `json:"fin"`
	RST         uint64     `json:"rst"`
	ACK         uint64     `json:"ack"`
	FirstSeenNs int64      `json:"first_seen_ns"`
	LastSeenNs  int64      `json:"last_seen_ns"`
}
