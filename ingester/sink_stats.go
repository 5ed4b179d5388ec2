package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"
)

// statsHeader is the part of collector.Stats the ingester reads; the counters stay in the raw
// JSON (and materialized columns). A local copy keeps the collector's BPF dependencies out of
// the ingester.
type statsHeader struct {
	Version     int       `json:"version"`
	Time        time.Time `json:"time"`
	Host        string    `json:"host"`
	Iface       string    `json:"iface"`
	CollectorID uint64    `json:"collector_id"`
}

type statsRow struct {
	h      statsHeader
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
	var h statsHeader
	if err := json.Unmarshal(r.Value, &h); err != nil {
		return 0, fmt.Errorf("stats message is not JSON: %w", err)
	}
	if h.Version < 1 || h.Host == "" || h.Time.IsZero() {
		return 0, errors.New("stats message lacks version, host or time")
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
