package bench

import (
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// storageVariants price migration 0900 (issue #18's storage levers: LowCardinality for tls_sni,
// tls_ja4 and dns_qname, sparse columns from 80% defaults, ZSTD(3) on seq) at insert: the
// floor and every view on packets as migrated, beside the same on packets with 0900 undone.
func storageVariants(b *testing.B, conn driver.Conn) []variant {
	all := func(string) bool { return true }
	none := func(string) bool { return false }
	undo := func(db string) {
		alterPackets(b, conn, db, undo0900)
	}
	return []variant{{name: "floor-before-0900", keep: none, setup: undo}, {name: "all-views-before-0900", keep: all, setup: undo}}
}
