package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/packetlake/packetlake/query"
)

// budgetRow is one row of the loss_budget report.
type budgetRow struct {
	Host        string `json:"host"`
	Seen        uint64 `json:"seen"`
	Stored      uint64 `json:"stored"`
	Sampled     uint64 `json:"sampled"`
	FlowsOnly   uint64 `json:"flows_only"`
	Unaccounted int64  `json:"unaccounted"`
	RingFull    uint64 `json:"ring_full"`
	Malformed   uint64 `json:"malformed"`
	Shed        uint64 `json:"shed"`
	Failed      uint64 `json:"failed"`
	RestartLost uint64 `json:"restart_lost"`
	Discarded   uint64 `json:"discarded"`
	IngestLost  int64  `json:"ingest_lost"`
	FlowFailed  uint64 `json:"flow_failed"`
}

// checkLossBudget runs the loss_budget report users run over [since, now] and checks, summed
// over the minutes of each host, that the kernel's packets are all stored per packet: at this
// offered load nothing is sampled, only counted in flows, or lost at any stage. It waits for
// the collectors' final stats messages to be ingested (seen reaching the kernel's count).
func checkLossBudget(t *testing.T, ctx context.Context, db string, since time.Time, seen map[string]uint64) {
	t.Helper()
	var sums map[string]budgetRow
	for ctx.Err() == nil {
		sums = lossBudgetSums(t, ctx, db, since)
		caughtUp := len(sums) == len(seen)
		for host, n := range seen {
			caughtUp = caughtUp && sums[host].Seen == n
		}
		if caughtUp {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	for host, n := range seen {
		got := sums[host]
		want := budgetRow{Host: host, Seen: n, Stored: n}
		if got != want {
			t.Errorf("loss_budget for %s, summed over the run: %+v; want %+v (every packet stored)", host, got, want)
		}
	}
}

// lossBudgetSums runs the loss_budget report over [since, now] and sums its rows per host.
func lossBudgetSums(t *testing.T, ctx context.Context, db string, since time.Time) map[string]budgetRow {
	t.Helper()
	cfg := query.Config{ClickHouse: env.CHConfig(db)}
	var out bytes.Buffer
	p := query.Params{Since: since.Add(-time.Minute), Until: time.Now().Add(time.Minute), Limit: 10_000}
	if err := query.Run(ctx, cfg, "loss_budget", p, "json", &out); err != nil {
		t.Fatalf("loss_budget: %v", err)
	}
	sums := map[string]budgetRow{}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var r budgetRow
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("loss_budget row: %v", err)
		}
		s := sums[r.Host]
		s.Host = r.Host
		s.Seen += r.Seen
		s.Stored += r.Stored
		s.Sampled += r.Sampled
		s.FlowsOnly += r.FlowsOnly
		s.Unaccounted += r.Unaccounted
		s.RingFull += r.RingFull
		s.Malformed += r.Malformed
		s.Shed += r.Shed
		s.Failed += r.Failed
		s.RestartLost += r.RestartLost
		s.Discarded += r.Discarded
		s.IngestLost += r.IngestLost
		s.FlowFailed += r.FlowFailed
		sums[r.Host] = s
	}
	return sums
}
