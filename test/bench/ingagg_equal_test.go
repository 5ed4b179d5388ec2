package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
	"github.com/packetlake/packetlake/test/analytics"
)

// TestIngesterAggregationEqualsViews: the rollups written by the ingester's own aggregation
// (rollupAgg, each insert under a token derived from the batch's) equal, table by table, both
// the aggregate computed directly over packets and what the materialized views write from the
// same inserts; and a replayed batch (same tokens) is dropped by every table, as the views' are.
// The wide L7 tables of prices_wide_test.go, fed by their views from the same inserts, are
// checked against the same aggregates over packets.
// Rows: the benchmarks' mix, with sample rates, tunnels, TLS names and DNS answers added so
// that every column is exercised, and test/analytics' synthetic batches (scans, jumbo frames at
// sample rate 10^6, NXDOMAIN, HTTP and TLS clients across an hour boundary).
func TestIngesterAggregationEqualsViews(t *testing.T) {
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Hour).Add(50 * time.Minute) // crosses an hour
	_, _, pkts := frames(200_000, 1000, 4, base.UnixNano())
	for i := range pkts {
		p := &pkts[i]
		if i%5 == 0 {
			p.SampleRate = uint32(1 + i%7)
		}
		if i%97 == 0 {
			p.TunnelType, p.TunnelID = "vxlan", uint32(1+i%5)
		}
		if p.DstPort == 443 && i%50 == 0 {
			p.TLSSNI = fmt.Sprintf("sni%d.example", i%13)
		}
		if p.DNSQName != "" && i%3 == 0 {
			p.DNSIsResponse, p.DNSRCode = 1, uint8(3*(i%2))
		}
		if i%11 == 0 { // several minutes, across the hour
			p.TS += int64(i%23) * int64(time.Minute)
		}
	}
	var batches [][]record.Packet
	for i := 0; i < len(pkts); i += 50_000 {
		batches = append(batches, pkts[i:min(i+50_000, len(pkts))])
	}
	for _, b := range analytics.Synthetic(base) {
		batches = append(batches, b.Packets)
	}

	conn := env.CH(t)
	views, own := migrated(t, conn, true), migrated(t, conn, false)
	t.Cleanup(func() {
		chExec(t, conn, "DROP DATABASE "+views+" SYNC")
		chExec(t, conn, "DROP DATABASE "+own+" SYNC")
	})
	// The rows are older than detect_recent's 10-minute TTL: no merge may drop them before the
	// comparison.
	for _, db := range []string{views, own} {
		for _, tb := range mergeTreeTables(t, db) {
			chExec(t, conn, "SYSTEM STOP MERGES "+db+"."+tb)
		}
	}
	client, err := env.CHConfig("").Client()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	var r rollupAgg
	send := func(i int) {
		tok := fmt.Sprintf("ingagg-test-%d", i)
		for _, db := range []string{views, own} {
			if err := insertPackets(ctx, client, db, batches[i], tok); err != nil {
				t.Fatal(err)
			}
		}
		r.reset()
		r.add(batches[i])
		r.foldHours()
		if err := sendRollups(ctx, client, r.inserts(own, batches[i], true, true), tok); err != nil {
			t.Fatal(err)
		}
	}
	createWideL7(t, views) // fewer, wider tables: checked on the same rows
	for i := range batches {
		send(i)
	}
	send(1) // a replay after a crash: same batch, same tokens
	send(len(batches) - 1)

	want := 0
	for _, b := range batches {
		want += len(b)
	}
	for _, db := range []string{views, own} {
		if got := count(t, conn, "SELECT count() FROM "+db+".packets"); got != uint64(want) {
			t.Fatalf("%s.packets: %d rows, want %d (the replay was not dropped)", db, got, want)
		}
	}
	rows := checkRollups(t, own, rollupChecks())
	checkRollups(t, views, append(rollupChecks(), wideL7Checks()...))
	// The ingester's tables and the views' tables, read alike, hold the same rows.
	ch, err := analytics.NewCH(env.CHConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rollupChecks() {
		a, err := ch.Query(ctx, strings.Replace(c.merged, " FROM "+c.table, " FROM "+views+"."+c.table, 1))
		if err != nil {
			t.Fatal(err)
		}
		b, err := ch.Query(ctx, strings.Replace(c.merged, " FROM "+c.table, " FROM "+own+"."+c.table, 1))
		if err != nil {
			t.Fatal(err)
		}
		if d := firstDiff(b, a); d != "" {
			t.Errorf("%s: the ingester's rows differ from the view's: %s", c.table, d)
		}
		if rows[c.table] < 2 && c.table != "detect_recent" {
			t.Errorf("%s: only %d rows: the data does not exercise it", c.table, rows[c.table])
		}
	}
	t.Logf("rows per rollup (direct over %d packets): %v", want, rows)
}

// insertPackets inserts a batch into db.packets as RowBinary under the batch's token, as the
// ingester does.
func insertPackets(ctx context.Context, client *chconn.Client, db string, pkts []record.Packet, token string) error {
	cols := make([]string, len(schema.Columns))
	for i, c := range schema.Columns {
		cols[i] = c.Name
	}
	var body []byte
	for i := range pkts {
		body = appendRowBinary(body, &pkts[i])
	}
	return client.Insert(ctx, "INSERT INTO "+db+".packets ("+strings.Join(cols, ", ")+") FORMAT RowBinary", bytes.NewReader(body),
		map[string]string{"insert_deduplicate": "1", "insert_deduplication_token": token})
}
