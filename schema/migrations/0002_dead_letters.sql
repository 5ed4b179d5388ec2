-- Kafka records the ingester could not decode, kept whole so they can be inspected or replayed
-- once the decoder is fixed. Keyed by where they came from: (topic, partition, offset) is unique.
-- ts is the Kafka record's timestamp (not the ingest time), so a replayed insert is identical.
-- Deduplicated like packets: dead letters go in with the token of the batch they were cut from.
CREATE TABLE IF NOT EXISTS {database}.dead_letters
(
    ts          DateTime64(3)          CODEC(Delta, ZSTD(1)),
    topic       LowCardinality(String),
    `partition` Int32,
    `offset`    Int64                  CODEC(Delta, ZSTD(1)),
    error       String                 CODEC(ZSTD(1)),
    raw         String                 CODEC(ZSTD(3))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (topic, `partition`, `offset`)
SETTINGS non_replicated_deduplication_window = 10000;
