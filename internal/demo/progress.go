package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/packetlake/packetlake/record"
)

// progress prints one line every cfg.ProgressEvery until ctx ends: where the packets are along
// the pipeline, so a stall shows where it is.
func (r *runner) progress(ctx context.Context, start time.Time) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.printProgress(ctx, start)
		}
	}
}

func (r *runner) printProgress(ctx context.Context, start time.Time) {
	rows := "?"
	if n, err := r.rows(ctx); err == nil {
		rows = fmt.Sprint(n)
	} else if ctx.Err() != nil {
		return // the period ended during the query; the final line follows
	} else {
		r.log.Debug("count rows", "err", err)
	}
	fmt.Fprintln(r.cfg.Out, progressLine(time.Since(start), r.col.Stats(), rows))
}

// progressLine: packets the kernel saw, records produced to and acknowledged by Kafka, rows in
// ClickHouse, and every record lost on the way (ring full, shed for memory, failed produce).
func progressLine(elapsed time.Duration, s record.Stats, rows string) string {
	return fmt.Sprintf("[%4ds] kernel saw %d pkts | kafka %d produced, %d acked | clickhouse %s rows | lost %d",
		int(elapsed.Round(time.Second).Seconds()), s.KernelSeen, s.RecordsProduced, s.RecordsAcked, rows, lost(s))
}

func lost(s record.Stats) uint64 { return s.KernelRingFull + s.RecordsShed + s.RecordsFailed }
