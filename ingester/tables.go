package ingester

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The small tables the ingester writes besides packets, over the native connection. Every
// insert carries its batch's dedup token, so a replayed batch adds nothing twice anywhere.

// deadLetter is a Kafka record that could not be decoded, kept whole.
type deadLetter struct {
	ts     time.Time // the Kafka record's timestamp: identical on replay
	offset int64
	err    string
	raw    []byte
}

func insertDeadLetters(ctx context.Context, conn driver.Conn, topic string, partition int32, dls []deadLetter, token string) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(dedupSettings(token)))
	b, err := conn.PrepareBatch(ctx, "INSERT INTO dead_letters (ts, topic, `partition`, `offset`, error, raw)", driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("insert dead letters: %w", err)
	}
	for _, d := range dls {
		if err := b.Append(d.ts, topic, partition, d.offset, d.err, string(d.raw)); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert dead letters: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert dead letters: %w", err)
	}
	return nil
}

// saveRange records a batch's offset range before its INSERT (see 0004_ingest_batches.sql).
func saveRange(ctx context.Context, conn driver.Conn, topic string, partition int32, first, last int64, token string) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(dedupSettings(token)))
	if err := conn.Exec(ctx, "INSERT INTO ingest_batches (topic, `partition`, first_offset, last_offset) VALUES (?, ?, ?, ?)",
		topic, partition, first, last); err != nil {
		return fmt.Errorf("record batch range %s: %w", token, err)
	}
	return nil
}

// loadRanges returns first → last offset of the recorded batches of a partition from offset on:
// the cuts a replay must make again.
func loadRanges(ctx context.Context, conn driver.Conn, topic string, partition int32, from int64) (map[int64]int64, error) {
	var rows []struct {
		First int64 `ch:"first_offset"`
		Last  int64 `ch:"last_offset"`
	}
	if err := conn.Select(ctx, &rows, "SELECT first_offset, last_offset FROM ingest_batches FINAL "+
		"WHERE topic = ? AND `partition` = ? AND first_offset >= ? ORDER BY first_offset LIMIT 100000",
		topic, partition, from); err != nil {
		return nil, fmt.Errorf("load batch ranges of %s/%d: %w", topic, partition, err)
	}
	out := make(map[int64]int64, len(rows))
	for _, r := range rows {
		out[r.First] = r.Last
	}
	return out, nil
}
