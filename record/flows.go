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
// ever sum.
//
// (CollectorID, ExportSeq, Chunk) identifies a message: the collector sends a message it has no
// acknowledgement for again with the very same bytes, and cuts no new export until every message
// of the last one is acknowledged, so a delta is never carried by two different messages. A
// message may still land twice (a copy that failed after the broker wrote it); the ingester
// stores an identity once. Chunk counts from 1; 0 is a message of a collector from before
// identities, which the ingester stores as it comes.
type FlowMessage struct {
	Version     int       `json:"version"`
	Time        time.Time `json:"time"` // when the map was read
	Host        string    `json:"host"`
	Iface       string    `json:"iface"`
	CollectorID uint64    `json:"collector_id"`
	ExportSeq   uint64    `json:"export_seq"`      // per run, counts exports; the chunks of one share it
	Chunk       uint32    `json:"chunk,omitempty"` // the message's number within its export, from 1
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

	// The receiving process (collect --receivers, issue 19): the last process the kernel saw
	// read the local socket these packets were delivered to, when the export was cut. Zero and
	// empty when unknown: not delivered locally, not read yet, another protocol, or off.
	RecvPID         uint32 `json:"recv_pid,omitempty"`          // process id (thread group) in the host's pid namespace
	RecvComm        string `json:"recv_comm,omitempty"`         // the reading thread's command name
	RecvCgroupID    uint64 `json:"recv_cgroup_id,omitempty"`    // cgroup v2 id
	RecvCgroup      string `json:"recv_cgroup,omitempty"`       // its path under the cgroup2 mount
	RecvContainerID string `json:"recv_container_id,omitempty"` // from the path (docker-, cri-containerd-, crio-, libpod-<id>)
	RecvPodUID      string `json:"recv_pod_uid,omitempty"`      // from the path (kubepods-...-pod<uid>.slice, pod<uid>)
}
