-- Detection (`packetlake detect`, package detector): the anomalies it reports, and the one small
-- rollup it reads besides packets.
--
-- anomalies: one row per incident, written when a detector first reports a (kind, subject); while
-- the same (kind, subject) keeps being detected no further row is written, and only after it has
-- not been detected for the detector's --rearm-after can it be reported again (see
-- detector/README.md). ts is when the detector reported it (its clock); window_start and
-- window_end are the capture times of the first and last packet that made the detector fire, so
-- ts - window_end is the pipeline's delay plus the detection's. evidence is a JSON object whose
-- keys depend on kind (the detector's SQL columns and the thresholds it used); detector_version
-- names the detector and a hash of its SQL, so a row says exactly which logic produced it.
-- id is random per incident: the webhook payload carries it, and the INSERT uses it as the
-- deduplication token, so a retried INSERT cannot double a row.
-- ORDER BY (kind, ts): "recent anomalies of this kind" and "everything since T" both read little;
-- the table holds a handful of rows per incident, never packets.
-- TTL (retention) default: 365 days; partitions are months and drop whole. Override per
-- deployment with ALTER TABLE <db>.anomalies MODIFY TTL toDate(ts) + INTERVAL 730 DAY.
CREATE TABLE IF NOT EXISTS {database}.anomalies
(
    ts               DateTime64(3)          CODEC(Delta, ZSTD(1)),
    kind             LowCardinality(String),
    subject          String                 CODEC(ZSTD(1)),
    window_start     DateTime64(3)          CODEC(ZSTD(1)),
    window_end       DateTime64(3)          CODEC(ZSTD(1)),
    score            Float64,
    evidence         String                 CODEC(ZSTD(3)),
    detector_version LowCardinality(String),
    detector_host    LowCardinality(String),
    id               UUID
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (kind, ts)
TTL toDate(ts) + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- Packets per second per destination and protocol: the history the volume_spike detector learns
-- its baseline from (the last --volume-baseline minutes, 10 by default). Reading that history
-- from packets costs a scan proportional to the packet rate every cycle; this table holds one row
-- per destination, protocol and second however many packets there were (measured in
-- detector/README.md). Minute rollups (0100) are too coarse: the baseline compares 10-second
-- windows, and the spread of minute averages understates theirs.
-- Counts are scaled by sample_rate like every report. SummingMergeTree: always read with
-- GROUP BY and sum(). Deduplication window: like the rollups of 0100, so that a replayed insert
-- into packets is not counted twice here.
-- TTL: the detector reads at most the last hour; rows live one to two hours (hourly partitions
-- dropped whole). Rows with old capture times (replayed captures) expire at once, by design.
CREATE TABLE IF NOT EXISTS {database}.detect_dst_1s
(
    ts       DateTime CODEC(Delta, ZSTD(1)),
    dst_addr IPv6     CODEC(ZSTD(1)),
    ip_proto UInt8,
    packets  UInt64   CODEC(ZSTD(1)),
    bytes    UInt64   CODEC(ZSTD(1))
)
ENGINE = SummingMergeTree((packets, bytes))
PARTITION BY toStartOfHour(ts)
ORDER BY (ts, dst_addr, ip_proto)
TTL ts + INTERVAL 1 HOUR
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.detect_dst_1s_mv TO {database}.detect_dst_1s AS
SELECT
    toDateTime(ts) AS ts,
    dst_addr,
    ip_proto,
    sum(sample_rate) AS packets,
    sum(toUInt64(pkt_len) * sample_rate) AS bytes
FROM {database}.packets
GROUP BY ts, dst_addr, ip_proto;
