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
