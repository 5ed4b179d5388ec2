package ingester

import (
	"context"
	"time"
)

// backoff doubles a wait from 100 ms up to a cap. Retries of one batch go on until they succeed
// or the partition is taken away: giving up would lose the batch or break the offset order.
type backoff struct {
	next, max time.Duration
}

func newBackoff(max time.Duration) *backoff { return &backoff{next: 100 * time.Millisecond, max: max} }

// wait sleeps for the current delay and doubles it; it returns ctx's error if ctx ends first.
func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next = min(2*b.next, b.max)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retry runs fn until it succeeds or ctx ends, calling onErr after each failure.
func retry(ctx context.Context, max time.Duration, fn func() error, onErr func(attempt int, err error)) error {
	b := newBackoff(max)
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		onErr(attempt, err)
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
}
