package analytics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/query"
)

// statsAt is one collector_stats message: cumulative counters of one collector run.
type statsAt struct {
	host, iface                                    string
	run                                            uint64
	at                                             time.Duration // after the start of the range
	seen, ringFull, malformed, shed, failed, acked uint64
}

// packetsAt is n rows of packets spread over one minute's first 50 s (or at one instant).
type packetsAt struct {
	host       string
	at         time.Duration
	n          int
	sampleRate uint32
	spread     bool
}

// flowAt is one flows row.
type flowAt struct {
	host    string
	at      time.Duration
	packets uint64
}

// TestLossBudgetReport runs query/reports/loss_budget.sql through query.RunSQL over collector
// stats, packets, flows and Kafka gaps made for it, two hosts and two minutes (plus a host with
// packets but no stats, and the gaps' rows, whose host is empty), and checks every value of
// every row, worked out by hand:
//
//	edge-a minute 0: run 101 started before the range: its report before the range is the
//	  baseline (seen 1000 -> 2000: 1000 seen, not 2000). 550 rows, 50 of them at rate 4 (150
//	  sampled); flows 950 cover 250 of the 300 without a row; 50 in neither.
//	edge-a minute 1: run 101's last report (+300, to 2300), then a restart: run 102 counts from
//	  zero, its first report (2400, more than run 101 had) is all increase, its second +500: 3200
//	  seen. Run 102's report after the range is left out. 2800 rows; flows 3300 are more than
//	  seen: 400 flows only, 0 unaccounted.
//	edge-b minute 0: two interfaces, two runs summed: run 201 starts in the range (first report
//	  2000, then 2500), run 202 goes from a baseline 7000 to 7400: 2900 seen. 900 rows, 100 at
//	  rate 16 (1500 sampled); flows 2000 are fewer than the 2400 represented: 0 flows only.
//	edge-b minute 1: run 201 +600, run 202's counters go back (7400 -> 300): +300, not a
//	  wrap-around. 1000 rows for 900 seen: the minute edge, unaccounted -100.
//	edge-c minute 1: rows, no stats: seen 0, shares NULL.
func TestLossBudgetReport(t *testing.T) {
	rep, err := query.ReportByName("loss_budget")
	if err != nil {
		t.Fatal(err)
	}
	ch := migrated(t)
	ctx := testCtx(t)
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour) // flows have a 90-day TTL
	sec := time.Second

	stats := []statsAt{
		{"edge-a", "eth0", 100, -3 * time.Minute, 99999, 9, 9, 9, 9, 9999}, // a run over before the range
		{"edge-a", "eth0", 101, -10 * sec, 1000, 5, 1, 2, 3, 900},
		{"edge-a", "eth0", 101, 20 * sec, 1600, 65, 6, 32, 18, 1200},
		{"edge-a", "eth0", 101, 50 * sec, 2000, 125, 11, 62, 33, 1500},
		{"edge-a", "eth0", 101, 65 * sec, 2300, 125, 11, 162, 33, 1700},
		{"edge-a", "eth0", 102, 80 * sec, 2400, 0, 0, 0, 0, 2000},
		{"edge-a", "eth0", 102, 110 * sec, 2900, 0, 0, 100, 0, 2600},
		{"edge-a", "eth0", 102, 125 * sec, 5000, 50, 50, 150, 50, 4400}, // after the range
		{"edge-b", "eth0", 201, 10 * sec, 2000, 400, 0, 0, 0, 700},
		{"edge-b", "eth0", 201, 40 * sec, 2500, 500, 0, 0, 0, 900},
		{"edge-b", "eth0", 201, 100 * sec, 3100, 500, 0, 0, 0, 1500},
		{"edge-b", "eth1", 202, -5 * sec, 7000, 10, 0, 0, 0, 5000},
		{"edge-b", "eth1", 202, 30 * sec, 7400, 10, 0, 0, 0, 5000},
		{"edge-b", "eth1", 202, 90 * sec, 300, 0, 0, 0, 0, 300},
	}
	// kernel_flow_failed by report (index in stats), read from raw: edge-a's run 101 +30 +30 in
	// minute 0 and +0 in minute 1, run 102 +7 (its first report) +3; edge-b's run 202 goes back
	// (5 -> 1): +1. Reports not listed have 0.
	flowFailed := map[int]uint64{0: 999, 1: 20, 2: 50, 3: 80, 4: 80, 5: 7, 6: 10, 7: 100, 11: 5, 12: 5, 13: 1}
	// records_lost_restart and records_discarded, read from raw the same way: edge-a's run 101
	// (pinned, restarted twice) +30 +30 in minute 0, +0 in minute 1, where its last message (a
	// replaced run's) also discards 25.
	restartLost := map[int]uint64{0: 999, 1: 10, 2: 40, 3: 70, 4: 70, 7: 9}
	discarded := map[int]uint64{4: 25, 7: 9}
	var b bytes.Buffer
	for i, s := range stats {
		raw, _ := json.Marshal(map[string]any{"version": 1, "host": s.host, "iface": s.iface, "collector_id": s.run,
			"kernel_seen": s.seen, "kernel_ring_full": s.ringFull, "samples_malformed": s.malformed,
			"records_shed": s.shed, "records_failed": s.failed, "records_acked": s.acked, "kernel_flow_failed": flowFailed[i],
			"records_lost_restart": restartLost[i], "records_discarded": discarded[i]})
		row, _ := json.Marshal(map[string]any{"ts": t0.Add(s.at).Format(time.RFC3339Nano), "host": s.host, "iface": s.iface,
			"collector_id": s.run, "partition": 0, "offset": i, "raw": string(raw)})
		b.Write(append(row, '\n'))
	}
	if err := ch.Insert(ctx, "INSERT INTO collector_stats (ts, host, iface, collector_id, `partition`, `offset`, raw) FORMAT JSONEachRow",
		&b, map[string]string{"date_time_input_format": "best_effort"}); err != nil {
		t.Fatal(err)
	}

	packets := []packetsAt{
		{"edge-a", -1 * sec, 7, 1, false}, // before the range
		{"edge-a", 0, 500, 1, true},
		{"edge-a", 0, 50, 4, true},
		{"edge-a", time.Minute, 2800, 1, true},
		{"edge-a", 2 * time.Minute, 9, 1, false}, // at until: after the range
		{"edge-b", 0, 800, 1, true},
		{"edge-b", 0, 100, 16, true},
		{"edge-b", time.Minute, 1000, 1, true},
		{"edge-c", time.Minute + 30*sec, 5, 1, false},
	}
	var seq, rows uint64
	for _, p := range packets {
		step := int64(0)
		if p.spread {
			step = int64(50*time.Second) / int64(p.n)
		}
		if err := ch.Exec(ctx, fmt.Sprintf("INSERT INTO packets (ts, host, iface, collector_id, seq, sample_rate) "+
			"SELECT fromUnixTimestamp64Nano(toInt64(%d) + toInt64(number) * %d), '%s', 'eth0', 7, %d + number, %d FROM numbers(%d)",
			t0.Add(p.at).UnixNano(), step, p.host, seq, p.sampleRate, p.n)); err != nil {
			t.Fatal(err)
		}
		seq += uint64(p.n)
		rows += uint64(p.n)
	}
	if n, err := ch.Uint(ctx, "SELECT count() FROM packets"); err != nil || n != rows {
		t.Fatalf("packets holds %d rows (%v), inserted %d", n, err, rows)
	}

	flows := []flowAt{
		{"edge-a", -2 * sec, 10000}, // before the range
		{"edge-a", 5 * sec, 500},
		{"edge-a", 55 * sec, 450},
		{"edge-a", 65 * sec, 3300},
		{"edge-b", 25 * sec, 2000},
		{"edge-b", 85 * sec, 50},
	}
	var values []string
	for i, fl := range flows {
		values = append(values, fmt.Sprintf("(fromUnixTimestamp64Nano(%d), '%s', 'eth0', 7, %d, %d)", t0.Add(fl.at).UnixNano(), fl.host, i, fl.packets))
	}
	if err := ch.Exec(ctx, "INSERT INTO flows (ts, host, iface, collector_id, export_seq, packets) VALUES "+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}

	// Gaps retention made (ingest_gaps), host unknown: partition 0 of topic instance A lost
	// [0, 99] before the range, then [100, 149] in minute 0 and, reported again after a crash,
	// [100, 179] in minute 1: 50 and 30 new. Instance B (the topic re-created) lost [100, 119] in
	// minute 0: 20. Partition 1 of A lost [0, 9] in minute 1: 10. A gap at until is left out.
	gaps := []struct {
		at          time.Duration
		id          string
		partition   int32
		first, last int64
	}{
		{-time.Minute, "A", 0, 0, 99},
		{10 * sec, "A", 0, 100, 149},
		{30 * sec, "B", 0, 100, 119},
		{65 * sec, "A", 0, 100, 179},
		{80 * sec, "A", 1, 0, 9},
		{2 * time.Minute, "A", 0, 180, 199},
	}
	values = values[:0]
	for _, g := range gaps {
		values = append(values, fmt.Sprintf("(fromUnixTimestamp64Nano(%d), 'packets', '%s', %d, %d, %d, %d)",
			t0.Add(g.at).UnixNano(), g.id, g.partition, g.first, g.last, g.last-g.first+1))
	}
	if err := ch.Exec(ctx, "INSERT INTO ingest_gaps (ts, topic, topic_id, `partition`, first_offset, last_offset, records) VALUES "+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}

	// Kernel drops (table drops, deltas): edge-a minute 0 drops 40 + 2 NO_SOCKET (two flows),
	// 30 NETFILTER_DROP and, elsewhere on the host (observed 0), 7 NO_SOCKET; edge-b minute 1
	// 5 UDP_CSUM. A row before the range and one at until are left out.
	drops := []struct {
		host     string
		at       time.Duration
		observed int
		reason   string
		dstPort  int
		packets  uint64
	}{
		{"edge-a", -5 * sec, 1, "NO_SOCKET", 9, 1000},
		{"edge-a", 5 * sec, 1, "NO_SOCKET", 7000, 40},
		{"edge-a", 35 * sec, 1, "NO_SOCKET", 7001, 2},
		{"edge-a", 35 * sec, 1, "NETFILTER_DROP", 7002, 30},
		{"edge-a", 35 * sec, 0, "NO_SOCKET", 0, 7},
		{"edge-b", 70 * sec, 1, "UDP_CSUM", 53, 5},
		{"edge-b", 2 * time.Minute, 1, "UDP_CSUM", 53, 900},
	}
	values = values[:0]
	for i, d := range drops {
		values = append(values, fmt.Sprintf("(fromUnixTimestamp64Nano(%d), '%s', 'eth0', 7, 1, %d, 1, %d, '%s', %d, %d)",
			t0.Add(d.at).UnixNano(), d.host, i, d.observed, d.reason, d.dstPort, d.packets))
	}
	if err := ch.Exec(ctx, "INSERT INTO drops (ts, host, iface, collector_id, run, export_seq, chunk, observed, reason, dst_port, packets) VALUES "+
		strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}
	kernelDrops := map[[2]string][3]string{ // minute, host: kernel_dropped, kernel_drop_reasons, kernel_dropped_elsewhere
		{"m0", "edge-a"}: {"72", "NO_SOCKET 42, NETFILTER_DROP 30", "7"},
		{"m1", "edge-b"}: {"5", "UDP_CSUM 5", "0"},
	}

	m0, m1 := t0.Format("2006-01-02 15:04:05"), t0.Add(time.Minute).Format("2006-01-02 15:04:05")
	type want struct {
		minute, host                      string
		seen, stored, sampled, flowsOnly  uint64
		unaccounted                       int64
		pct                               []float64 // stored, sampled, flows_only, unaccounted; nil: NULL
		ringFull, malformed, shed, failed uint64
		ingestLost                        int64
		flowFailed, kafkaExpired          uint64
		restartLost, discarded            uint64
	}
	wants := []want{ // minute DESC, host
		{m1, "", 0, 0, 0, 0, 0, nil, 0, 0, 0, 0, 0, 0, 40, 0, 0},
		{m1, "edge-a", 3200, 2800, 0, 400, 0, []float64{87.5, 0, 12.5, 0}, 0, 0, 200, 0, 0, 10, 0, 0, 25},
		{m1, "edge-b", 900, 1000, 0, 0, -100, []float64{111.11, 0, 0, -11.11}, 0, 0, 0, 0, -100, 1, 0, 0, 0},
		{m1, "edge-c", 0, 5, 0, 0, -5, nil, 0, 0, 0, 0, -5, 0, 0, 0, 0},
		{m0, "", 0, 0, 0, 0, 0, nil, 0, 0, 0, 0, 0, 0, 70, 0, 0},
		{m0, "edge-a", 1000, 550, 150, 250, 50, []float64{55, 15, 25, 5}, 120, 10, 60, 30, 50, 60, 0, 60, 0},
		{m0, "edge-b", 2900, 900, 1500, 0, 500, []float64{31.03, 51.72, 0, 17.24}, 500, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	columns := []string{"minute", "host", "seen", "stored", "sampled", "flows_only", "unaccounted",
		"stored_pct", "sampled_pct", "flows_only_pct", "unaccounted_pct", "ring_full", "malformed", "shed", "failed", "ingest_lost",
		"flow_failed", "kafka_expired_records", "restart_lost", "discarded",
		"kernel_dropped", "kernel_drop_reasons", "kernel_dropped_elsewhere"}

	run := func(limit int) []map[string]any {
		t.Helper()
		var out bytes.Buffer
		cfg := query.Config{ClickHouse: ch.Config}
		p := query.Params{Since: t0, Until: t0.Add(2 * time.Minute), Limit: limit}
		if err := query.RunSQL(ctx, cfg, rep.SQL, p, "JSONEachRow", &out); err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		d := json.NewDecoder(&out)
		d.UseNumber()
		for d.More() {
			r := map[string]any{}
			if err := d.Decode(&r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		return got
	}
	// text reads a value as the report gives it: 64-bit integers come quoted, NULL is nil.
	text := func(v any) string {
		switch x := v.(type) {
		case nil:
			return "NULL"
		case json.Number:
			return x.String()
		case string:
			return x
		}
		return fmt.Sprintf("%T %v", v, v)
	}

	got := run(1000)
	if len(got) != len(wants) {
		t.Errorf("%d rows, want %d: %v", len(got), len(wants), got)
	}
	for i, w := range wants[:min(len(wants), len(got))] {
		g := got[i]
		if cols := slices.Sorted(mapKeys(g)); !slices.Equal(cols, slices.Sorted(slices.Values(columns))) {
			t.Errorf("row %d: columns %v, want %v", i, cols, columns)
		}
		if w.seen != w.stored+w.sampled+w.flowsOnly+uint64(w.unaccounted) {
			t.Fatalf("the test's row %d does not add up", i) // a typo here, not in the report
		}
		exact := map[string]string{
			"minute": w.minute, "host": w.host,
			"seen": strconv.FormatUint(w.seen, 10), "stored": strconv.FormatUint(w.stored, 10),
			"sampled": strconv.FormatUint(w.sampled, 10), "flows_only": strconv.FormatUint(w.flowsOnly, 10),
			"unaccounted": strconv.FormatInt(w.unaccounted, 10),
			"ring_full":   strconv.FormatUint(w.ringFull, 10), "malformed": strconv.FormatUint(w.malformed, 10),
			"shed": strconv.FormatUint(w.shed, 10), "failed": strconv.FormatUint(w.failed, 10),
			"ingest_lost": strconv.FormatInt(w.ingestLost, 10), "flow_failed": strconv.FormatUint(w.flowFailed, 10),
			"kafka_expired_records": strconv.FormatUint(w.kafkaExpired, 10),
			"restart_lost":          strconv.FormatUint(w.restartLost, 10), "discarded": strconv.FormatUint(w.discarded, 10),
		}
		minute := "m0"
		if w.minute == m1 {
			minute = "m1"
		}
		kd, ok := kernelDrops[[2]string{minute, w.host}]
		if !ok {
			kd = [3]string{"0", "", "0"}
		}
		exact["kernel_dropped"], exact["kernel_drop_reasons"], exact["kernel_dropped_elsewhere"] = kd[0], kd[1], kd[2]
		for col, wv := range exact {
			if gv := text(g[col]); gv != wv {
				t.Errorf("row %d (%s %s): %s = %s, want %s", i, w.minute, w.host, col, gv, wv)
			}
		}
		for j, col := range []string{"stored_pct", "sampled_pct", "flows_only_pct", "unaccounted_pct"} {
			gv := text(g[col])
			if w.pct == nil {
				if gv != "NULL" {
					t.Errorf("row %d (%s %s): %s = %s, want NULL", i, w.minute, w.host, col, gv)
				}
				continue
			}
			v, err := strconv.ParseFloat(gv, 64)
			if err != nil || math.Abs(v-w.pct[j]) > 1e-9 {
				t.Errorf("row %d (%s %s): %s = %s, want %v", i, w.minute, w.host, col, gv, w.pct[j])
			}
		}
	}

	// The pipeline dashboard's panel computes the same budget as shares summed over the hosts
	// chosen: all of them, or edge-a.
	_, queries := LoadDashboards(t, checkProvisioning(t))
	i := slices.IndexFunc(queries, func(q GrafanaQuery) bool {
		return q.Where == `panel "Loss budget: where the packets seen went" target A`
	})
	if i < 0 {
		t.Fatal("no loss budget panel in the pipeline dashboard")
	}
	type shares struct {
		minute                                  string
		stored, sampled, flowsOnly, unaccounted float64 // of seen
	}
	for _, c := range []struct {
		vars GrafanaVars
		want []shares
	}{
		{GrafanaVars{}, []shares{
			{m0, 1450.0 / 3900, 1650.0 / 3900, 250.0 / 3900, 550.0 / 3900},
			{m1, 3805.0 / 4100, 0, 400.0 / 4100, -105.0 / 4100}}},
		{GrafanaVars{"host": {"edge-a"}}, []shares{
			{m0, 0.55, 0.15, 0.25, 0.05},
			{m1, 2800.0 / 3200, 0, 400.0 / 3200, 0}}},
	} {
		sql, err := ExpandGrafana(queries[i].SQL, t0, t0.Add(2*time.Minute), 60, c.vars)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := ch.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(c.want) {
			t.Errorf("loss budget panel, hosts %v: rows %q, want %d", c.vars, rows, len(c.want))
			continue
		}
		for j, r := range rows {
			w := c.want[j]
			f := strings.Split(r, "\t")
			if len(f) != 5 || !strings.HasPrefix(f[0], w.minute) {
				t.Errorf("loss budget panel, hosts %v: row %q, want minute %s and 4 shares", c.vars, r, w.minute)
				continue
			}
			for k, want := range []float64{w.stored, w.sampled, w.flowsOnly, w.unaccounted} {
				if got, err := strconv.ParseFloat(f[k+1], 64); err != nil || math.Abs(got-want) > 1e-12 {
					t.Errorf("loss budget panel, hosts %v: row %q: share %d = %s, want %v", c.vars, r, k, f[k+1], want)
				}
			}
		}
	}

	// {limit} keeps the latest minutes.
	if got := run(2); len(got) != 2 || text(got[0]["host"]) != "" || text(got[1]["host"]) != "edge-a" || text(got[1]["minute"]) != m1 {
		t.Errorf("limit 2: %v, want the first two rows of minute %s", got, m1)
	}
}
