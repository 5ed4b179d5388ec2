package testinfra

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// WaitCommitted waits until consumer group has committed the end of every partition of topics on
// the broker at addr: for an ingester, everything produced to them so far is in ClickHouse. The
// way to wait for a stable count without sleeping.
func WaitCommitted(ctx context.Context, addr, group string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		ends, err := adm.ListEndOffsets(ctx, topics...)
		committed, cerr := adm.FetchOffsets(ctx, group)
		done := err == nil && cerr == nil
		if done {
			ends.Each(func(e kadm.ListedOffset) {
				c, ok := committed.Lookup(e.Topic, e.Partition)
				done = done && (e.Offset == 0 || ok && c.At == e.Offset)
			})
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s did not commit the end of %v (last errors: %v, %v): %w", group, topics, err, cerr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
