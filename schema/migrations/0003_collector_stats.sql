-- One row per stats message of a collector (collector.Stats as JSON on the stats topic). The
-- message is kept whole in raw, so a counter the collector adds later is queryable at once
-- (JSONExtractUInt(raw, 'name')); who and when are columns for filtering, and the counters the
-- loss reports need are MATERIALIZED from raw by ClickHouse, so the ingester only parses the
-- header. Counters are cumulative per collector run: reports take differences within one
-- collector_id. (partition, offset) say where the message came from in Kafka.
CREATE TABLE IF NOT EXISTS {database}.collector_stats
(
    ts                 DateTime64(9)          CODEC(Delta, ZSTD(1)),
    host               LowCardinality(String),
    iface              LowCardinality(String),
    collector_id       UInt64,
    `partition`        Int32,
    `offset`           Int64                  CODEC(Delta, ZSTD(1)),
    raw                String                 CODEC(ZSTD(3)),
    kernel_seen        UInt64 MATERIALIZED JSONExtractUInt(raw, 'kernel_seen'),
    kernel_emitted     UInt64 MATERIALIZED JSONExtractUInt(raw, 'kernel_emitted'),
    kernel_ring_full   UInt64 MATERIALIZED JSONExtractUInt(raw, 'kernel_ring_full'),
    kernel_sampled_out UInt64 MATERIALIZED JSONExtractUInt(raw, 'kernel_sampled_out'),
    samples_read       UInt64 MATERIALIZED JSONExtractUInt(raw, 'samples_read'),
    samples_malformed  UInt64 MATERIALIZED JSONExtractUInt(raw, 'samples_malformed'),
    records_produced   UInt64 MATERIALIZED JSONExtractUInt(raw, 'records_produced'),
    records_acked      UInt64 MATERIALIZED JSONExtractUInt(raw, 'records_acked'),
    records_shed       UInt64 MATERIALIZED JSONExtractUInt(raw, 'records_shed'),
    records_failed     UInt64 MATERIALIZED JSONExtractUInt(raw, 'records_failed')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (host, iface, ts)
SETTINGS non_replicated_deduplication_window = 10000;
