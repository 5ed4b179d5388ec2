package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/record"
)

// dropsSink inserts the collectors' kernel drop counts (record.DropMessage: deltas) into drops,
// one row per (reason, flow) delta, each message identity (host, run, export_seq, chunk) once:
// like a flow message, a drop message the collector sent again after a failed copy may land
// twice at different offsets, so the batch's first INSERT is preceded by a lookup of its
// identities in the table (see flows_dedup.go for why no window is needed).
type dropsSink struct {
	conn    driver.Conn
	log     *slog.Logger
	dropped prometheus.Counter // messages already stored (or twice in the batch), not inserted
	msgs    []*record.DropMessage
	n       int
	checked bool
	recent  recentIDs
}

func newDropsSink(conn driver.Conn, log *slog.Logger, dropped prometheus.Counter) *dropsSink {
	return &dropsSink{conn: conn, log: log, dropped: dropped}
}

func newDropDuplicates() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "packetlake", Subsystem: "ingester",
		Name: "drop_messages_duplicate_total", Help: "Kernel drop messages not inserted: their identity (host, run, export_seq, chunk) was already stored."})
}

// parseDropMessage decodes and checks one message; an error sends it to dead_letters.
func parseDropMessage(b []byte) (*record.DropMessage, error) {
	var m record.DropMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("drop message is not JSON: %w", err)
	}
	if m.Version != record.DropMessageVersion || m.Host == "" || m.Time.IsZero() || m.Chunk == 0 {
		return nil, errors.New("drop message lacks version, host, time or chunk")
	}
	for i, d := range m.Drops {
		if !d.SrcAddr.IsValid() || !d.DstAddr.IsValid() || d.Reason == "" {
			return nil, fmt.Errorf("drop %d: missing address or reason", i)
		}
	}
	return &m, nil
}

func dropIDOf(m *record.DropMessage) flowMsgID {
	return flowMsgID{host: m.Host, collector: m.Run, seq: m.ExportSeq, chunk: m.Chunk}
}

func (s *dropsSink) add(r *kgo.Record) (int, error) {
	m, err := parseDropMessage(r.Value)
	if err != nil {
		return 0, err
	}
	s.msgs = append(s.msgs, m)
	s.n += len(m.Drops)
	return len(m.Drops), nil
}

func (s *dropsSink) len() int { return s.n }

// dropStored drops the messages whose identity the table (or this sink, lately) holds, and
// repeats within the batch.
func (s *dropsSink) dropStored(ctx context.Context) error {
	inBatch := map[flowMsgID]bool{}
	var ask []*record.DropMessage
	for _, m := range s.msgs {
		if id := dropIDOf(m); !inBatch[id] && !s.recent.has(id) {
			inBatch[id] = true
			ask = append(ask, m)
		}
	}
	stored, err := storedDropIDs(ctx, s.conn, ask)
	if err != nil {
		return err
	}
	kept, n, dropped := s.msgs[:0], 0, 0
	first := map[flowMsgID]bool{}
	for _, m := range s.msgs {
		id := dropIDOf(m)
		if first[id] || stored[id] || s.recent.has(id) {
			dropped++
			continue
		}
		first[id] = true
		kept = append(kept, m)
		n += len(m.Drops)
	}
	clear(s.msgs[len(kept):])
	s.msgs, s.n = kept, n
	if dropped > 0 {
		s.dropped.Add(float64(dropped))
		s.log.Info("drop messages already stored: not inserted again", "messages", dropped)
	}
	return nil
}

// storedDropIDs returns the identities of msgs the drops table holds rows of; rows carry their
// message's time as ts, which the query names.
func storedDropIDs(ctx context.Context, conn driver.Conn, msgs []*record.DropMessage) (map[flowMsgID]bool, error) {
	stored := map[flowMsgID]bool{}
	for len(msgs) > 0 {
		part := msgs[:min(len(msgs), lookupChunk)]
		msgs = msgs[len(part):]
		times, runs := map[int64]bool{}, map[uint64]bool{}
		var ts, rs []string
		for _, m := range part {
			if ns := m.Time.UnixNano(); !times[ns] {
				times[ns] = true
				ts = append(ts, "fromUnixTimestamp64Nano(toInt64("+strconv.FormatInt(ns, 10)+"))")
			}
			if !runs[m.Run] {
				runs[m.Run] = true
				rs = append(rs, strconv.FormatUint(m.Run, 10))
			}
		}
		rows, err := conn.Query(ctx, "SELECT DISTINCT host, run, export_seq, chunk FROM drops WHERE ts IN ("+
			strings.Join(ts, ", ")+") AND run IN ("+strings.Join(rs, ", ")+")")
		if err != nil {
			return nil, fmt.Errorf("look up stored drop messages: %w", err)
		}
		for rows.Next() {
			var id flowMsgID
			if err := rows.Scan(&id.host, &id.collector, &id.seq, &id.chunk); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up stored drop messages: %w", err)
			}
			stored[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("look up stored drop messages: %w", err)
		}
	}
	return stored, nil
}

func (s *dropsSink) insert(ctx context.Context, token string) error {
	if !s.checked {
		if err := s.dropStored(ctx); err != nil {
			return err
		}
		s.checked = true
	}
	if s.n == 0 {
		return nil
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(dedupSettings(token)))
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO drops (ts, host, iface, collector_id, run, export_seq, chunk, observed, reason, "+
		"ifindex, ip_version, ip_proto, src_addr, dst_addr, src_port, dst_port, packets, bytes)", driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("insert drops: %w", err)
	}
	for _, m := range s.msgs {
		for i := range m.Drops {
			d := &m.Drops[i]
			var observed uint8
			if d.Observed {
				observed = 1
			}
			if err := b.Append(m.Time, m.Host, m.Iface, m.CollectorID, m.Run, m.ExportSeq, m.Chunk, observed, d.Reason,
				d.Ifindex, d.IPVersion, d.IPProto, v6(d.SrcAddr), v6(d.DstAddr), d.SrcPort, d.DstPort, d.Packets, d.Bytes); err != nil {
				_ = b.Abort()
				return fmt.Errorf("insert drops: %w", err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert drops: %w", err)
	}
	for _, m := range s.msgs {
		s.recent.add(dropIDOf(m))
	}
	return nil
}

func (s *dropsSink) reset() {
	clear(s.msgs)
	s.msgs = s.msgs[:0]
	s.n = 0
	s.checked = false
}

func (s *dropsSink) table() string { return "drops" }

// fresh counts no duplicates: the batch it bisects counted them already.
func (s *dropsSink) fresh() sink {
	return newDropsSink(s.conn, s.log, prometheus.NewCounter(prometheus.CounterOpts{Name: "uncounted"}))
}
