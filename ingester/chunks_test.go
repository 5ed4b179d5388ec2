package ingester

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/schema"
)

// TestArrowBatchChunks: a batch of several chunks (two full, one partial) goes to ClickHouse as
// one ArrowStream of three record batches and lands as one part, row for row what the native
// writer stores from the same packets; the same batch sent again with its token adds nothing;
// and the batch, reset and refilled with fewer rows, sends only those.
func TestArrowBatchChunks(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	conn := chConn(t, sharedCH.TCPAddr())
	pkts := benchPackets(t)
	n := 2*chunkRows + 123
	if len(pkts) < n {
		t.Fatalf("benchPackets made %d packets, want %d", len(pkts), n)
	}
	pkts = pkts[:n]
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
		_, _, _, db := names("chunks")
		if err := schema.Migrate(ctx, conn, db); err != nil {
			t.Fatal(err)
		}
		w, err := newWriter(testConfig(sharedCH, "unused", "unused", "unused", db, writer))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		b := w.NewBatch()
		b.Append(pkts[:1000]) // frames arrive a thousand rows or so at a time
		b.Append(pkts[1000:])
		if writer == WriterArrowHTTP {
			if ab := b.(*arrowBatch); ab.used != 3 || ab.Len() != n {
				t.Fatalf("%d rows in %d chunks, want %d in 3", ab.Len(), ab.used, n)
			}
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
		t.Errorf("%d parts from one INSERT of three record batches, want 1", parts)
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
