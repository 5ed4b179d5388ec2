-- The ingester's memory of batch boundaries it could not derive from the data alone. A batch cut
-- by size is a pure function of the records from its first offset, so a replay cuts it again the
-- same way; a batch cut by age, rebalance or shutdown is not, so its offset range is written here
-- BEFORE its INSERT. A member that (re)starts a partition honours the ranges it finds here, cuts
-- the same batches, sends the same dedup tokens, and ClickHouse drops what it already has.
-- ReplacingMergeTree: writing the same range twice (retries, replays) leaves one row.
-- TTL: a range only matters until its offsets are committed, i.e. seconds; a week is generous.
CREATE TABLE IF NOT EXISTS {database}.ingest_batches
(
    topic        LowCardinality(String),
    `partition`  Int32,
    first_offset Int64,
    last_offset  Int64,
    created_at   DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, `partition`, first_offset)
TTL created_at + INTERVAL 7 DAY
SETTINGS non_replicated_deduplication_window = 10000;
