-- Traffic by the few-valued dimensions, per minute and per hour: what the console's traffic view
-- asks most often (ports, protocols, hosts, interfaces, VLANs) without the addresses and source
-- ports that make flows_1m nearly as large as packets when most flows are a few packets long
-- (every client's ephemeral port is a new key). A day of traffic to a handful of services is a
-- few tens of thousands of rows here, whatever the packet rate.
--
-- Same rules as the rollups of 0100/0101: counts scaled by sample_rate, AggregatingMergeTree
-- read with GROUP BY and sum (or FINAL), equal to the same aggregate over packets for every key
-- (test/analytics/rollups_test.go and console/api_test.go check it), the deduplication window so a
-- replayed insert is not counted twice, 30 days per minute and 365 per hour by default.

CREATE TABLE IF NOT EXISTS {database}.traffic_1m
(
    minute     DateTime                             CODEC(Delta, ZSTD(1)),
    host       LowCardinality(String),
    iface      LowCardinality(String),
    vlan_id    UInt16,
    ip_version UInt8,
    ip_proto   UInt8,
    dst_port   UInt16,
    packets    SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    bytes      SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (minute, host, iface, ip_proto, dst_port, vlan_id, ip_version)
TTL toDate(minute) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.traffic_1m_mv TO {database}.traffic_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    host,
    iface,
    vlan_id,
    ip_version,
    ip_proto,
    dst_port,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes
FROM {database}.packets
GROUP BY minute, host, iface, vlan_id, ip_version, ip_proto, dst_port;

CREATE TABLE IF NOT EXISTS {database}.traffic_1h
(
    hour       DateTime                             CODEC(Delta, ZSTD(1)),
    host       LowCardinality(String),
    iface      LowCardinality(String),
    vlan_id    UInt16,
    ip_version UInt8,
    ip_proto   UInt8,
    dst_port   UInt16,
    packets    SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    bytes      SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, host, iface, ip_proto, dst_port, vlan_id, ip_version)
TTL toDate(hour) + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.traffic_1h_mv TO {database}.traffic_1h AS
SELECT
    toStartOfHour(minute) AS hour,
    host,
    iface,
    vlan_id,
    ip_version,
    ip_proto,
    dst_port,
    sum(packets) AS packets,
    sum(bytes) AS bytes
FROM {database}.traffic_1m
GROUP BY hour, host, iface, vlan_id, ip_version, ip_proto, dst_port;
