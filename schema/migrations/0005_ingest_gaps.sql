-- Kafka records the ingester never read because the topic's retention deleted them first: an
-- outage of ClickHouse (or of every ingester) longer than the topic's retention. One row per gap
-- a partition worker found between the offset it expected next and the partition's log start.
-- What the records held is unknown, even their hosts; the collectors counted them as acknowledged,
-- so their packets are in loss_budget's ingest_lost, and the records themselves in its
-- kafka_expired_records.
-- A crash can make a worker report a gap again, from the same first offset to a later last
-- offset: count the union of the ranges per topic instance and partition (loss_budget does),
-- not the sum of records. ReplacingMergeTree folds exact repeats.
CREATE TABLE IF NOT EXISTS {database}.ingest_gaps
(
    ts           DateTime64(3),          -- when the gap was found
    topic        LowCardinality(String),
    topic_id     String,                 -- Kafka's ID of the topic instance ('' if the broker has none)
    `partition`  Int32,
    first_offset Int64,
    last_offset  Int64,
    records      UInt64                  -- last_offset - first_offset + 1
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, topic_id, `partition`, first_offset, last_offset)
SETTINGS non_replicated_deduplication_window = 1000;
