package ingester

import (
	"maps"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// insertSettings go with every INSERT the ingester makes.
var insertSettings = map[string]string{
	// Deduplication by token is what makes a replayed batch harmless; say so explicitly in
	// case a server profile turned it off.
	"insert_deduplicate": "1",
	// A batch of replayed captures can span more than the default 100 days (partitions); a
	// refusal would be retried forever, so warn in the server log instead of throwing.
	"throw_on_max_partitions_per_insert_block": "0",
	// Into a Distributed table (a cluster), the INSERT returns only once every shard has its
	// part, each deduplicated there by the same token: only then may the offsets be committed.
	// A background insert would be acknowledged from the receiving node's queue, which a crash
	// of that node loses. On a single server the setting does nothing.
	"distributed_foreground_insert": "1",
	// The rollup views run side by side instead of one after another.
	"parallel_view_processing": "1",
}

// InsertSettings returns a copy of the settings every INSERT of the ingester carries, besides its
// deduplication token: benchmarks give them to the INSERTs they compare with the ingester's.
func InsertSettings() map[string]string {
	return maps.Clone(insertSettings)
}

// dedupSettings is insertSettings plus the batch's token, for clickhouse-go's context.
func dedupSettings(token string) clickhouse.Settings {
	s := clickhouse.Settings{"insert_deduplication_token": token}
	for k, v := range insertSettings {
		s[k] = v
	}
	return s
}
