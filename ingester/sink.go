package ingester

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A sink turns one topic's Kafka records into the rows of one table. A partition worker owns
// one and cuts its batches; the sink only knows rows.
type sink interface {
	// add appends the rows of r. An error means r is bad: nothing of it was appended, and the
	// worker sends it to dead_letters.
	add(r *kgo.Record) (rows int, err error)
	// len is the number of rows pending.
	len() int
	// insert writes the pending rows as one INSERT with the dedup token; on error they stay
	// pending for a retry. It may first drop rows stored before (the flows sink drops flow
	// messages it finds stored); a retry then sends the same rows, and len counts them.
	insert(ctx context.Context, token string) error
	// reset drops the pending rows after a successful insert, keeping the memory.
	reset()
	// table is the table inserted into, for metrics and logs.
	table() string
	// fresh returns an empty sink of the same kind and table that counts nothing in the
	// metrics: a bisection (bisect.go) re-adds a batch's records to it, part by part.
	fresh() sink
}
