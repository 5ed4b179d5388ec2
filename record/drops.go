package record

import (
	"net/netip"
	"time"
)

// DropMessageVersion is the version of DropMessage this build writes and reads.
const DropMessageVersion = 1

// DropReasonMapFull is the reason of a DropRow counting the drops of seen packets that the
// kernel's (reason, flow) table had no room for: their reason and flow are unknown.
const DropReasonMapFull = "MAP_FULL"

// DropMessage is one Kafka record on the drops topic (JSON): the kernel drop counts of one
// export of one collector process, at most DropRowsPerMessage rows. Rows are DELTAS since the
// previous export of the same Run, so summing rows is exact.
//
// (Host, Run, ExportSeq, Chunk) identifies a message: the collector sends a message that was
// not acknowledged again with the very same bytes, and cuts no new export until every message of
// the last one is acknowledged; the ingester stores an identity once. Run is random per
// collector process: the kernel's drop counters live as long as the process that loaded them,
// while CollectorID goes on across the processes of a pinned run.
type DropMessage struct {
	Version     int       `json:"version"`
	Time        time.Time `json:"time"` // when the counters were read
	Host        string    `json:"host"`
	Iface       string    `json:"iface"`
	CollectorID uint64    `json:"collector_id"`
	Run         uint64    `json:"run"`
	ExportSeq   uint64    `json:"export_seq"`
	Chunk       uint32    `json:"chunk"` // from 1
	Drops       []DropRow `json:"drops"`
}

// DropRow is one delta: of a reason and flow for a packet received on the observed interface
// (Observed), or of a reason alone for every other drop on the host (flow fields zero,
// addresses "::").
type DropRow struct {
	Observed  bool       `json:"observed"`
	Reason    string     `json:"reason"` // enum skb_drop_reason without SKB_DROP_REASON_, or DropReasonMapFull
	Ifindex   uint32     `json:"ifindex"`
	IPVersion uint8      `json:"ip_version"`
	IPProto   uint8      `json:"ip_proto"`
	SrcAddr   netip.Addr `json:"src_addr"` // IPv4 as IPv4; "::" when not IP or not observed
	DstAddr   netip.Addr `json:"dst_addr"`
	SrcPort   uint16     `json:"src_port"`
	DstPort   uint16     `json:"dst_port"`
	Packets   uint64     `json:"packets"`
	Bytes     uint64     `json:"bytes"`
}

// DropRowsPerMessage keeps a message around 200 KiB of JSON, well under max.message.bytes.
const DropRowsPerMessage = 1000
