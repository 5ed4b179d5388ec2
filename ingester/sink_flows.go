package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/record"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The flows topic's wire format (record.FlowMessage). Rows are deltas: the table only sums them.
type (
	flowMessage = record.FlowMessage
	flowRow     = record.FlowRow
)

// flowsSink inserts flow messages into flows, one row per flow delta, each message identity
// once (flows_dedup.go).
type flowsSink struct {
	conn    driver.Conn
	log     *slog.Logger
	dropped prometheus.Counter // messages already stored (or twice in the batch), not inserted
	msgs    []*flowMessage
	n       int
	checked bool // the batch's duplicates are dropped: retries send the very same rows
	recent  recentIDs
}

func newFlowsSink(conn driver.Conn, log *slog.Logger, dropped prometheus.Counter) *flowsSink {
	return &flowsSink{conn: conn, log: log, dropped: dropped}
}

// parseFlowMessage decodes and checks one message; an error sends it to dead_letters.
func parseFlowMessage(b []byte) (*flowMessage, error) {
	var m flowMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("flow message is not JSON: %w", err)
	}
	if m.Version != record.FlowMessageVersion || m.Host == "" || m.Time.IsZero() {
		return nil, errors.New("flow message lacks version, host or time")
	}
	for i := range m.Flows {
		if !m.Flows[i].SrcAddr.IsValid() || !m.Flows[i].DstAddr.IsValid() {
			return nil, fmt.Errorf("flow %d: missing address", i)
		}
	}
	return &m, nil
}

func (s *flowsSink) add(r *kgo.Record) (int, error) {
	m, err := parseFlowMessage(r.Value)
	if err != nil {
		return 0, err
	}
	s.msgs = append(s.msgs, m)
	s.n += len(m.Flows)
	return len(m.Flows), nil
}

func (s *flowsSink) len() int { return s.n }

func v6(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

// dropStored drops the messages whose identity the flows table (or this sink, lately) already
// holds, and the repeats of an identity within the batch.
func (s *flowsSink) dropStored(ctx context.Context) error {
	first := make([]bool, len(s.msgs))
	inBatch := map[flowMsgID]bool{}
	var ask []*flowMessage
	for i, m := range s.msgs {
		id, ok := idOf(m)
		switch {
		case !ok:
			first[i] = true
		case !inBatch[id] && !s.recent.has(id):
			inBatch[id], first[i] = true, true
			ask = append(ask, m)
		}
	}
	stored, err := storedFlowIDs(ctx, s.conn, ask)
	if err != nil {
		return err
	}
	kept, n := s.msgs[:0], 0
	var dropped []flowMsgID
	for i, m := range s.msgs {
		if id, _ := idOf(m); !first[i] || stored[id] {
			dropped = append(dropped, id)
			continue
		}
		kept = append(kept, m)
		n += len(m.Flows)
	}
	clear(s.msgs[len(kept):])
	s.msgs, s.n = kept, n
	if len(dropped) > 0 {
		s.dropped.Add(float64(len(dropped)))
		d := dropped[0]
		s.log.Info("flow messages already stored: not inserted again", "messages", len(dropped), "host", d.host,
			"collector_id", d.collector, "export_seq", d.seq, "chunk", d.chunk)
	}
	return nil
}

func (s *flowsSink) insert(ctx context.Context, token string) error {
	if !s.checked {
		if err := s.dropStored(ctx); err != nil {
			return err
		}
		s.checked = true
	}
	if s.n == 0 {
		return nil // every message was stored before
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(dedupSettings(token)))
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO flows (ts, host, iface, collector_id, export_seq, chunk, ifindex, vlan_id, tunnel_id, ip_version, ip_proto, "+
		"src_addr, dst_addr, src_port, dst_port, packets, bytes, syn, fin, rst, ack, first_seen, last_seen, "+
		"recv_pid, recv_comm, recv_cgroup_id, recv_cgroup, recv_container_id, recv_pod_uid)", driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("insert flows: %w", err)
	}
	for _, m := range s.msgs {
		for i := range m.Flows {
			f := &m.Flows[i]
			if err := b.Append(m.Time, m.Host, m.Iface, m.CollectorID, m.ExportSeq, m.Chunk, f.Ifindex, f.VlanID, f.TunnelID, f.IPVersion, f.IPProto,
				v6(f.SrcAddr), v6(f.DstAddr), f.SrcPort, f.DstPort, f.Packets, f.Bytes, f.SYN, f.FIN, f.RST, f.ACK,
				time.Unix(0, f.FirstSeenNs).UTC(), time.Unix(0, f.LastSeenNs).UTC(),
				f.RecvPID, f.RecvComm, f.RecvCgroupID, f.RecvCgroup, f.RecvContainerID, f.RecvPodUID); err != nil {
				_ = b.Abort()
				return fmt.Errorf("insert flows: %w", err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert flows: %w", err)
	}
	for _, m := range s.msgs {
		if id, ok := idOf(m); ok {
			s.recent.add(id)
		}
	}
	return nil
}

func (s *flowsSink) reset() {
	clear(s.msgs)
	s.msgs = s.msgs[:0]
	s.n = 0
	s.checked = false
}

func (s *flowsSink) table() string { return "flows" }

// fresh counts no duplicates: the batch it bisects counted them already.
func (s *flowsSink) fresh() sink {
	return newFlowsSink(s.conn, s.log, prometheus.NewCounter(prometheus.CounterOpts{Name: "uncounted"}))
}
