package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetlake/packetlake/record"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The flows topic's wire format (record.FlowMessage). Rows are deltas: the table only sums them.
type (
	flowMessage = record.FlowMessage
	flowRow     = record.FlowRow
)

// flowsSink inserts flow messages into flows, one row per flow delta.
type flowsSink struct {
	conn driver.Conn
	msgs []*flowMessage
	n    int
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

func (s *flowsSink) insert(ctx context.Context, token string) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(dedupSettings(token)))
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO flows (ts, host, iface, collector_id, export_seq, ifindex, vlan_id, tunnel_id, ip_version, ip_proto, "+
		"src_addr, dst_addr, src_port, dst_port, packets, bytes, syn, fin, rst, ack, first_seen, last_seen)", driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("insert flows: %w", err)
	}
	for _, m := range s.msgs {
		for i := range m.Flows {
			f := &m.Flows[i]
			if err := b.Append(m.Time, m.Host, m.Iface, m.CollectorID, m.ExportSeq, f.Ifindex, f.VlanID, f.TunnelID, f.IPVersion, f.IPProto,
				v6(f.SrcAddr), v6(f.DstAddr), f.SrcPort, f.DstPort, f.Packets, f.Bytes, f.SYN, f.FIN, f.RST, f.ACK,
				time.Unix(0, f.FirstSeenNs).UTC(), time.Unix(0, f.LastSeenNs).UTC()); err != nil {
				_ = b.Abort()
				return fmt.Errorf("insert flows: %w", err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert flows: %w", err)
	}
	return nil
}

func (s *flowsSink) reset() {
	clear(s.msgs)
	s.msgs = s.msgs[:0]
	s.n = 0
}

func (s *flowsSink) table() string { return "flows" }

func (s *flowsSink) fresh() sink { return &flowsSink{conn: s.conn} }
