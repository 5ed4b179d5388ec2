package analytics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// wideFromRows is migration 0901's min_rows_for_wide_part: parts of packets with fewer rows are
// Compact (one file for all columns), the others Wide (files per column).
const wideFromRows = 150_000

// TestPacketsPartTypes checks migration 0901 on the real server with the capture mix: an insert
// of the ingester's default size (FlushRows 100k) gives Compact parts, and merging two of them
// gives a Wide part, the format the data is kept in (a Compact part stores more bytes per
// packet and reads every column).
func TestPacketsPartTypes(t *testing.T) {
	ch := migrated(t)
	ctx := testCtx(t)
	_, _, copies := loadMixBase(t, ch)
	if err := ch.Exec(ctx, "CREATE TABLE mix AS packets ENGINE = MergeTree ORDER BY tuple()"); err != nil {
		t.Fatal(err)
	}
	if err := ch.Exec(ctx, fmt.Sprintf(replicate, "mix", "base", copies)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		q := fmt.Sprintf("INSERT INTO packets SELECT * FROM mix ORDER BY ts, seq LIMIT 100000 OFFSET %d", i*100_000)
		if err := ch.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		for _, p := range packetsParts(ctx, t, ch) {
			t.Logf("after insert %d: %s", i+1, p)
			if p.kind != "Compact" {
				t.Errorf("a part of an insert of 100k rows is %s, want Compact: %s", p.kind, p)
			}
		}
	}
	if err := ch.Exec(ctx, "OPTIMIZE TABLE packets FINAL"); err != nil {
		t.Fatal(err)
	}
	parts := packetsParts(ctx, t, ch)
	if len(parts) != 1 {
		t.Errorf("%d parts after OPTIMIZE FINAL, want the mix's one day in one part", len(parts))
	}
	wide := 0
	for _, p := range parts {
		t.Logf("after OPTIMIZE FINAL: %s", p)
		want := "Wide"
		if p.kind != want {
			t.Errorf("merged part of %d rows is %s, want %s", p.rows, p.kind, want)
		}
		if p.kind == "Wide" {
			wide++
		}
	}
	if wide == 0 {
		t.Error("no merged part reached a Wide part's rows")
	}
	// The control: the same inserts into packets without 0901's setting are Wide, so the Compact
	// parts above are the migration's doing and not the size of the mix's rows; merged, both
	// tables must take the same bytes (0901 changes the inserts' files, not what is kept).
	for _, q := range []string{
		"CREATE TABLE packets_before_0901 AS packets",
		"ALTER TABLE packets_before_0901 MODIFY SETTING min_rows_for_wide_part = 0",
		"INSERT INTO packets_before_0901 SELECT * FROM mix ORDER BY ts, seq LIMIT 100000",
	} {
		if err := ch.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	kinds, err := ch.Query(ctx, "SELECT DISTINCT part_type FROM system.parts WHERE database = currentDatabase() AND table = 'packets_before_0901' AND active")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the same 100k rows without 0901: %v", kinds)
	if strings.Join(kinds, ",") != "Wide" {
		t.Errorf("without 0901 an insert of 100k rows gives %v parts, want Wide (is the mix too narrow to test 0901?)", kinds)
	}
	for _, q := range []string{
		"INSERT INTO packets_before_0901 SELECT * FROM mix ORDER BY ts, seq LIMIT 100000 OFFSET 100000",
		"OPTIMIZE TABLE packets_before_0901 FINAL",
	} {
		if err := ch.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows, disk, _, err := tableSize(ctx, ch, "packets")
	if err != nil {
		t.Fatal(err)
	}
	rows0, disk0, _, err := tableSize(ctx, ch, "packets_before_0901")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("merged: %.3f B/packet from Compact inserts (0901), %.3f B/packet from Wide inserts", float64(disk)/float64(rows), float64(disk0)/float64(rows0))
	if rows != rows0 || disk*1000 > disk0*1001 {
		t.Errorf("merged from Compact inserts: %d rows, %d bytes; from Wide inserts: %d rows, %d bytes", rows, disk, rows0, disk0)
	}
}

type partInfo struct {
	partition, kind string
	rows, plain     uint64
}

func (p partInfo) String() string {
	return fmt.Sprintf("partition %s: %d rows, %s, %.1f MB uncompressed", p.partition, p.rows, p.kind, float64(p.plain)/1e6)
}

// packetsParts returns the active parts of packets.
func packetsParts(ctx context.Context, t *testing.T, ch CH) []partInfo {
	t.Helper()
	lines, err := ch.Query(ctx, "SELECT partition, part_type, rows, data_uncompressed_bytes FROM system.parts "+
		"WHERE database = currentDatabase() AND table = 'packets' AND active ORDER BY partition, name")
	if err != nil {
		t.Fatal(err)
	}
	var out []partInfo
	for _, l := range lines {
		f := strings.Split(l, "\t")
		rows, _ := strconv.ParseUint(f[2], 10, 64)
		plain, _ := strconv.ParseUint(f[3], 10, 64)
		out = append(out, partInfo{partition: f[0], kind: f[1], rows: rows, plain: plain})
	}
	return out
}
