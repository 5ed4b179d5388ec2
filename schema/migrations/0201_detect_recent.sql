-- Detection, continued (see 0200_anomalies.sql): the table every detector but volume_spike reads.
--
-- The last few minutes of packets, ordered by capture time, with only the columns the detectors
-- read. Every cycle (2 s) the detectors look at the last 10 s; packets is ordered by (hour,
-- dst_addr, src_addr, ts), so there a 10-second window reads every row of the current hour's
-- merged part: measured with one insert per second at 10k packets/s, 2.37M rows read for 100k in
-- the window after 4 minutes, and a full cycle of 1.0 s on 26M rows of the hour (2 cores); here
-- the primary key reads the window alone (detector/README.md has the numbers, and the cost of the
-- copy at insert). Counts are scaled by sample_rate in the queries, as on packets.
-- TTL: rows live 10 to 15 minutes (5-minute partitions dropped whole; merge_with_ttl_timeout
-- makes ClickHouse look for expired parts every 5 minutes instead of every 4 hours). The
-- detectors read at most the last --window (10 s by default).
-- Deduplication window: like the rollups of 0100, so that a replayed insert into packets is not
-- copied twice.
CREATE TABLE IF NOT EXISTS {database}.detect_recent
(
    ts              DateTime64(9) CODEC(Delta, ZSTD(1)),
    src_addr        IPv6          CODEC(ZSTD(1)),
    dst_addr        IPv6          CODEC(ZSTD(1)),
    ip_proto        UInt8         CODEC(ZSTD(1)),
    src_port        UInt16        CODEC(ZSTD(1)),
    dst_port        UInt16        CODEC(ZSTD(1)),
    tcp_flags       UInt16        CODEC(ZSTD(1)),
    icmp_type       UInt8         CODEC(ZSTD(1)),
    dns_is_response UInt8         CODEC(ZSTD(1)),
    dns_qname       String        CODEC(ZSTD(1)),
    sample_rate     UInt32        CODEC(ZSTD(1)),
    pkt_len         UInt32        CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toStartOfFiveMinutes(ts)
ORDER BY ts
TTL toDateTime(ts) + INTERVAL 10 MINUTE
SETTINGS ttl_only_drop_parts = 1, merge_with_ttl_timeout = 300, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.detect_recent_mv TO {database}.detect_recent AS
SELECT ts, src_addr, dst_addr, ip_proto, src_port, dst_port, tcp_flags, icmp_type, dns_is_response, dns_qname, sample_rate, pkt_len
FROM {database}.packets;
