package ingester

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/schema"
)

// TestArrowBatchMatchesNative: a batch of 100k rows, appended a frame at a time (its columns
// double many times on the way), lands as one part, every column of every row what the native
// writer stores from the same packets; the same batch sent again with its token adds nothing;
// and the batch, reset and refilled with fewer rows, sends only those.
func TestArrowBatchMatchesNative(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	conn := chConn(t, sharedCH.TCPAddr())
	pkts := benchPackets(t)
	n := len(pkts)
	digest := func(db string) string {
		var count, hash uint64
		q := "SELECT count(), groupBitXor(cityHash64(*)) FROM " + db + ".packets" // every column of every row
		if err := conn.QueryRow(ctx, q).Scan(&count, &hash); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d rows, xor of row hashes %x", count, hash)
	}
	dbs := map[string]string{}
	for _, writer := range []string{WriterArrowHTTP, WriterNative} {
		_, _, _, db := names("bignative")
		if err := schema.Migrate(ctx, conn, db); err != nil {
			t.Fatal(err)
		}
		w, err := newWriter(testConfig(sharedCH, "unused", "unused", "unused", db, writer))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		b := w.NewBatch()
		for i := 0; i < n; i += 1000 { // frames arrive a thousand rows or so at a time
			b.Append(pkts[i:min(i+1000, n)])
		}
		if b.Len() != n {
			t.Fatalf("%d rows in the batch, want %d", b.Len(), n)
		}
		for range 2 {
			if err := w.Insert(ctx, b, "chunks-token"); err != nil {
				t.Fatal(err)
			}
		}
		dbs[writer] = db
	}
	arrowDB := dbs[WriterArrowHTTP]
	got, want := digest(arrowDB), digest(dbs[WriterNative])
	if got != want || !strings.HasPrefix(got, fmt.Sprintf("%d rows,", n)) {
		t.Fatalf("arrow writer stored %s; native writer %s", got, want)
	}
	if parts := queryCount(t, conn, "SELECT count() FROM system.parts WHERE active AND database = '"+arrowDB+"' AND table = 'packets'"); parts != 1 {
		t.Errorf("%d parts from one INSERT, want 1", parts)
	}

	// Reused: reset, 10 rows, a new token: 10 rows more, in a part of their own.
	w, err := newWriter(testConfig(sharedCH, "unused", "unused", "unused", arrowDB, WriterArrowHTTP))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b := w.NewBatch()
	b.Append(pkts)
	b.Reset()
	b.Append(pkts[:10])
	if err := w.Insert(ctx, b, "chunks-token-2"); err != nil {
		t.Fatal(err)
	}
	if c := queryCount(t, conn, "SELECT count() FROM "+arrowDB+".packets"); c != uint64(n+10) {
		t.Errorf("%d rows after a reset batch of 10, want %d", c, n+10)
	}
}

// TestDoubleGrowth: double keeps the values, leaves a slice with room alone, and grows by
// doubling (at least 1024), so reaching 250k values copies the column about once, not the
// ~4 times append's 1.25x steps do.
func TestDoubleGrowth(t *testing.T) {
	var s []uint32
	grows, copied := 0, 0
	for i := range 250_000 {
		if cap(s) == len(s) {
			grows++
			copied += len(s)
		}
		s = append(double(s, 1), uint32(i))
	}
	for i, v := range s {
		if v != uint32(i) {
			t.Fatalf("s[%d] = %d after growing", i, v)
		}
	}
	if cap(s) != 262144 || grows != 9 || copied >= cap(s) {
		t.Errorf("cap %d after %d grows copying %d values; want 262144 (1024 doubled 8 times), 9 grows, fewer values copied than that", cap(s), grows, copied)
	}
	if r := double(s[:10], 5); &r[0] != &s[0] {
		t.Error("double reallocated a slice that had room")
	}
}
