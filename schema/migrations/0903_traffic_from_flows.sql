-- Issue 18: traffic_1m is rolled up from flows_1m's rows instead of from every packet, as
-- talkers_1m is since 0902: one GROUP BY over every packet of a batch fewer. Priced side by side
-- (BENCHMARKS.md, "Issue #18: traffic from flows_1m's rows"): ClickHouse copying 1M rows with
-- every view, 0.97, 1.05 and 1.09 CPU-s against 1.05, 1.17 and 1.20 with traffic over packets
-- (medians of three runs; the floor without views 0.49-0.54), so 0.08-0.12 CPU-s per million
-- rows less; in the ingester's runs the difference is inside their spread.
--
-- flows_1m gains traffic's two keys that were not flows keys, vlan_id and ip_version (types as
-- in packets and traffic_1m), at the end of its ORDER BY: a rollup key must hold every
-- non-aggregated column, or merges of the AggregatingMergeTree would keep one arbitrary VLAN
-- per flow. ClickHouse lets a sorting key grow only by columns added in the same ALTER (0600).
-- A flow seen on two VLANs or both IP versions (no such flow exists: addresses pin the version)
-- becomes two rows; reads that group by the old keys sum them as before. Rows stored before this
-- migration keep vlan_id 0 and ip_version 0; traffic_1m already holds theirs.
--
-- Exact: traffic_1m holds, per (minute, host, iface, vlan_id, ip_version, ip_proto, dst_port,
-- tunnel_type, tunnel_id), sum(sample_rate) and sum(pkt_len * sample_rate). Every one of those
-- keys is now a flows_1m key and flows_1m's packets and bytes are the same two sums per finer
-- key, so summing flows rows gives the same numbers (sums of sums; TestRollupsEqualPackets).
-- Every packet reaches flows_1m (its view has no WHERE). A replayed packets INSERT is dropped
-- in flows_1m with what it cascades, as for talkers (0902).
--
-- flows_1h is unchanged: its view groups flows_1m's rows by its own key, which does not list
-- vlan_id or ip_version, so it sums over them and keeps one row per flow and hour as before.
--
-- Re-applying this file, or 0600 after it, must not shrink flows_1m's key: ClickHouse accepts a
-- shorter MODIFY ORDER BY silently (merges would then fold rows that differ only in vlan_id),
-- and refuses to re-add existing columns to it. The migration runner drops a MODIFY ORDER BY
-- that the table's current key already equals or extends (schema/sortkey.go).
--
-- As in 0600 and 0902, the views are dropped and created again: apply it with the ingesters
-- stopped, or an INSERT in between misses those rollups.

ALTER TABLE {database}.flows_1m
    ADD COLUMN IF NOT EXISTS vlan_id UInt16 AFTER tunnel_id,
    ADD COLUMN IF NOT EXISTS ip_version UInt8 AFTER vlan_id,
    MODIFY ORDER BY (minute, host, iface, dst_addr, src_addr, ip_proto, dst_port, src_port, tunnel_type, tunnel_id, vlan_id, ip_version);

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
    vlan_id,
    ip_version,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x02) != 0) AS syn,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x10) != 0) AS ack,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x01) != 0) AS fin,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x04) != 0) AS rst,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM {database}.packets
GROUP BY minute, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id, vlan_id, ip_version;

DROP VIEW IF EXISTS {database}.traffic_1m_mv;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.traffic_1m_mv TO {database}.traffic_1m AS
SELECT
    minute,
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
FROM {database}.flows_1m
GROUP BY minute, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id;
