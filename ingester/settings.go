package ingester

import "github.com/ClickHouse/clickhouse-go/v2"

// insertSettings go with every INSERT the ingester makes.
var insertSettings = map[string]string{
	// Deduplication by token is what makes a replayed batch harmless; say so explicitly in
	// case a server profile turned it off.
	"insert_deduplicate": "1",
	// A batch of replayed captures can span more than the default 100 days (partitions); a
	// refusal would be retried forever, so warn in the server log instead of throwing.
	"throw_on_max_partitions_per_insert_block": "0",
}

// dedupSettings is insertSettings plus the batch's token, for clickhouse-go's context.
func dedupSettings(token string) clickhouse.Settings {
	s := clickhouse.Settings{"insert_deduplication_token": token}
	for k, v := range insertSettings {
		s[k] = v
	}
	return s
}
