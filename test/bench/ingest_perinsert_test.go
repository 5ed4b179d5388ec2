package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/packetlake/packetlake/ingester"
)

// copyPerInsert returns a run in which ClickHouse copies the rows of src into db.packets as the
// ingester's INSERTs arrive: one statement per block of block rows (on a backlog the ingester's
// batches grow to MaxBatchRows, ingester/grow.go), each with its own
// deduplication token and the ingester's insert settings. It is a mover that costs nothing
// itself and sends no body to parse, so its rows per CPU-second bound what any mover making
// INSERTs of that size can reach. ch-floor's single INSERT ... SELECT is not that bound with
// views: ClickHouse squashes the views' output of its 10 blocks into one part per view table,
// where 10 INSERTs make 10 (BENCHMARKS.md, "the views' deduplication").
func copyPerInsert(b *testing.B, src string, block int) func(db string) func() {
	return func(db string) func() {
		conn := env.CH(b)
		n := count(b, conn, "SELECT count() FROM "+src)
		set := []string{fmt.Sprintf("max_threads = 1, max_insert_threads = 1, max_block_size = %d, min_insert_block_size_rows = %d", block, block)}
		if block != 100_000 { // the Memory table's blocks are 100k rows: squash them by rows alone
			set = append(set, fmt.Sprintf("min_insert_block_size_bytes = %d", 1<<32))
		}
		for k, v := range ingester.InsertSettings() {
			set = append(set, k+" = "+v)
		}
		for i := range (int(n) + block - 1) / block {
			chExec(b, conn, fmt.Sprintf("INSERT INTO %s.packets SELECT * FROM %s LIMIT %d OFFSET %d SETTINGS %s, insert_deduplication_token = 'per-insert/%s/%d'",
				db, src, block, i*block, strings.Join(set, ", "), db, i))
		}
		return func() {}
	}
}
