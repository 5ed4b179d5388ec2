-- Issue 17: reports, rollups and the console can group by tunnel. The flow and traffic rollups
-- (0100, 0101, 0401) gain the tunnel of the innermost packet (0500's tunnel_type, tunnel_id: ''
-- and 0 for traffic that is not tunnelled) as key columns, so the same inner flow or port in two
-- VNIs is two rows, as in the kernel's exact flow counters (0501).
--
-- The columns join the end of each ORDER BY (ClickHouse lets a sorting key grow only by columns
-- added in the same ALTER); a rollup key must hold every non-aggregated column, or merges of
-- the (Aggregating)MergeTree would keep one arbitrary tunnel per key. Rows written before this
-- migration keep '' and 0: their tunnelled traffic stays under "no tunnel".
--
-- The views are dropped and created again, each pair right after the other: an INSERT into
-- packets in between (another ingester still running while one applies this migration) misses
-- that view's rollup. ALTER TABLE ... MODIFY QUERY would have no such window, but measured on
-- the sharded cluster (test/cluster TestClusterPipelineSurvivesKills, twice) the views it
-- modified no longer dropped the replayed blocks of a killed shard's retried INSERTs: flows and
-- traffic counted replayed packets twice there, while the untouched views stayed exact. Apply it
-- with the ingesters stopped for exact rollups across the upgrade. Priced with
-- BenchmarkRollupPrices (BENCHMARKS.md, "Ingest").

ALTER TABLE {database}.flows_1m
    ADD COLUMN IF NOT EXISTS tunnel_type LowCardinality(String) AFTER dst_port,
    ADD COLUMN IF NOT EXISTS tunnel_id UInt32 AFTER tunnel_type,
    MODIFY ORDER BY (minute, host, iface, dst_addr, src_addr, ip_proto, dst_port, src_port, tunnel_type, tunnel_id);
ALTER TABLE {database}.flows_1h
    ADD COLUMN IF NOT EXISTS tunnel_type LowCardinality(String) AFTER dst_port,
    ADD COLUMN IF NOT EXISTS tunnel_id UInt32 AFTER tunnel_type,
    MODIFY ORDER BY (hour, host, iface, dst_addr, src_addr, ip_proto, dst_port, src_port, tunnel_type, tunnel_id);
ALTER TABLE {database}.traffic_1m
    ADD COLUMN IF NOT EXISTS tunnel_type LowCardinality(String) AFTER ip_version,
    ADD COLUMN IF NOT EXISTS tunnel_id UInt32 AFTER tunnel_type,
    MODIFY ORDER BY (minute, host, iface, ip_proto, dst_port, vlan_id, ip_version, tunnel_type, tunnel_id);
ALTER TABLE {database}.traffic_1h
    ADD COLUMN IF NOT EXISTS tunnel_type LowCardinality(String) AFTER ip_version,
    ADD COLUMN IF NOT EXISTS tunnel_id UInt32 AFTER tunnel_type,
    MODIFY ORDER BY (hour, host, iface, ip_proto, dst_port, vlan_id, ip_version, tunnel_type, tunnel_id);

DROP VIEW IF EXISTS {database}.flows_1m_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.flows_1m_mv TO {database}.flows_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    host,
    iface,
    src_addr,
    dst_addr,
    ip_proto,
    src_port,
    dst_port,
    tunnel_type,
    tunnel_id,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x02) != 0) AS syn,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x10) != 0) AS ack,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x01) != 0) AS fin,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x04) != 0) AS rst,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM {database}.packets
GROUP BY minute, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id;

DROP VIEW IF EXISTS {database}.flows_1h_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.flows_1h_mv TO {database}.flows_1h AS
SELECT
    toStartOfHour(minute) AS hour,
    host,
    iface,
    src_addr,
    dst_addr,
    ip_proto,
    src_port,
    dst_port,
    tunnel_type,
    tunnel_id,
    sum(packets) AS packets,
    sum(bytes) AS bytes,
    sum(syn) AS syn,
    sum(ack) AS ack,
    sum(fin) AS fin,
    sum(rst) AS rst,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen
FROM {database}.flows_1m
GROUP BY hour, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id;

DROP VIEW IF EXISTS {database}.traffic_1m_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.traffic_1m_mv TO {database}.traffic_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    host,
    iface,
    vlan_id,
    ip_version,
    ip_proto,
    dst_port,
    tunnel_type,
    tunnel_id,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes
FROM {database}.packets
GROUP BY minute, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id;

DROP VIEW IF EXISTS {database}.traffic_1h_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.traffic_1h_mv TO {database}.traffic_1h AS
SELECT
    toStartOfHour(minute) AS hour,
    host,
    iface,
    vlan_id,
    ip_version,
    ip_proto,
    dst_port,
    tunnel_type,
    tunnel_id,
    sum(packets) AS packets,
    sum(bytes) AS bytes
FROM {database}.traffic_1m
GROUP BY hour, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id;
