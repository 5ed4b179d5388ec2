package ingester

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetlake/packetlake/record"
	"github.com/twmb/franz-go/pkg/kgo"
)

// statsRow is one stats message. The table keys on the header fields of the decoded message;
// the counters stay in the raw JSON (and materialized columns), so fields a newer collector
// adds are stored without an ingester change.
type statsRow struct {
	h      record.Stats
	offset int64
	raw    string
}

// statsSink inserts stats messages into collector_stats, one row each.
type statsSink struct {
	conn      driver.Conn
	partition int32
	rows      []statsRow
}

func (s *statsSink) add(r *kgo.Record) (int, error) {
	h, err := record.DecodeStats(r.Value)
	if err != nil {
		return 0, err
	}
	s.rows = append(s.rows, statsRow{h: h, offset: r.Offset, raw: string(r.Value)})
	return 1, nil
}

func (s *statsSink) len() int { return len(s.rows) }

func (s *statsSink) insert(ctx context.Context, token string) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(dedupSettings(token)))
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO collector_stats (ts, host, iface, collector_id, `partition`, `offset`, raw)", driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("insert collector_stats: %w", err)
	}
	for _, r := range s.rows {
		if err := b.Append(r.h.Time, r.h.Host, r.h.Iface, r.h.CollectorID, s.partition, r.offset, r.raw); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert collector_stats: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert collector_stats: %w", err)
	}
	return nil
}

func (s *statsSink) reset() {
	clear(s.rows)
	s.rows = s.rows[:0]
}

func (s *statsSink) table() string { return "collector_stats" }

func (s *statsSink) fresh() sink { return &statsSink{conn: s.conn, partition: s.partition} }
