package ingester

import (
	"context"
	"fmt"

	"github.com/packetlake/packetlake/record"
)

// Writer names accepted by Config.Writer.
const (
	WriterArrowHTTP = "arrow-http" // INSERT ... FORMAT ArrowStream over HTTP (the default: faster, see BENCH.md)
	WriterNative    = "native"     // clickhouse-go/v2 native protocol, PrepareBatch + column appends
)

// A Batch accumulates the rows of one INSERT into packets. Reset keeps its memory for the next
// batch: a partition worker owns one Batch for its whole life.
type Batch interface {
	Append(ps []record.Packet) // one frame's rows
	Len() int
	Reset()
}

// A Writer inserts batches into the packets table. Insert sends one INSERT carrying token as
// insert_deduplication_token; on error the batch is left as it was, so the caller retries the
// very same rows with the same token.
type Writer interface {
	NewBatch() Batch
	Insert(ctx context.Context, b Batch, token string) error
	Close() error
}

// newWriter builds the writer cfg names.
func newWriter(cfg Config) (Writer, error) {
	switch cfg.Writer {
	case WriterArrowHTTP:
		return newArrowHTTPWriter(cfg)
	case WriterNative:
		return newNativeWriter(cfg)
	}
	return nil, fmt.Errorf("unknown writer %q (want %q or %q)", cfg.Writer, WriterArrowHTTP, WriterNative)
}
