package bench

// Issue #18 compares every lever against packets as it was before them: the table migrations up
// to 0852 leave. These ALTERs turn a freshly migrated packets back into that table (the
// columns, codecs and settings migrations 0900 and 0901 changed), so a benchmark measures the
// reference and today's table side by side in one run.

// undo0900 reverts migration 0900_packets_storage_dictionaries.
var undo0900 = []string{
	"MODIFY COLUMN tls_sni String CODEC(ZSTD(1))",
	"MODIFY COLUMN tls_ja4 String CODEC(ZSTD(1))",
	"MODIFY COLUMN dns_qname String CODEC(ZSTD(1))",
	"MODIFY COLUMN seq CODEC(Delta, ZSTD(1))",
	"MODIFY SETTING ratio_of_defaults_for_sparse_serialization = 0.9375",
}

// undo0901 reverts migration 0901_packets_compact_inserts: ClickHouse's default, 0 rows.
var undo0901 = []string{"MODIFY SETTING min_rows_for_wide_part = 0"}

// beforeIssue18 is packets as migrations up to 0852 made it: issue #18's reference floor.
var beforeIssue18 = append(append([]string{}, undo0900...), undo0901...)
