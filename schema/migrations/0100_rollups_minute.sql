-- Per-minute rollups of packets, filled by materialized views at insert time, so dashboards and
-- reports over days or weeks read thousands of rows instead of billions of packets.
--
-- Counts are scaled by sample_rate exactly like the reports: packets = sum(sample_rate),
-- bytes = sum(pkt_len * sample_rate); the TCP flag, DNS, TLS and HTTP counts are sums of
-- sample_rate too. A rollup queried with FINAL, or with GROUP BY and sum/min/max/uniqMerge,
-- equals the same aggregate over packets for every key (analytics/rollups_test.go checks it).
--
-- Engines: AggregatingMergeTree where a table mixes sums with min/max or uniq states (columns
-- of SimpleAggregateFunction / AggregateFunction say how rows with the same key merge);
-- SummingMergeTree where every value is a sum. Merging is eventual: always aggregate again
-- when reading (GROUP BY + sum/min/max/uniqMerge) or use FINAL.
--
-- Distinct counts (uniq) are HyperLogLog-like states: exact up to a few tens of thousands of
-- distinct values per key, approximate (about 1%) beyond; merging states is exact set union.
--
-- non_replicated_deduplication_window: measured on ClickHouse 26.7, an INSERT into packets that
-- is dropped as a duplicate (same insert_deduplication_token, or same data without a token)
-- still runs the materialized views; the view's block is dropped only if its target table
-- deduplicates too (deduplicate_blocks_in_dependent_materialized_views, on by default, derives
-- the view block's identity from the source block's). Without the window on every rollup, a
-- replay by the ingester after a crash would count its packets twice in the rollups.
--
-- TTL (retention) defaults: minute tables 30 days. Each table partitions by day and the TTL is
-- on the day, so a whole day's part is dropped at once. Override per deployment with
--   ALTER TABLE <db>.flows_1m MODIFY TTL toDate(minute) + INTERVAL 90 DAY
-- (see schema/STORAGE.md); no later migration touches these TTLs.

CREATE TABLE IF NOT EXISTS {database}.flows_1m
(
    minute     DateTime                                 CODEC(Delta, ZSTD(1)),
    host       LowCardinality(String),
    iface      LowCardinality(String),
    src_addr   IPv6                                     CODEC(ZSTD(1)),
    dst_addr   IPv6                                     CODEC(ZSTD(1)),
    ip_proto   UInt8,
    src_port   UInt16                                   CODEC(ZSTD(1)),
    dst_port   UInt16                                   CODEC(ZSTD(1)),
    packets    SimpleAggregateFunction(sum, UInt64)     CODEC(ZSTD(1)),
    bytes      SimpleAggregateFunction(sum, UInt64)     CODEC(ZSTD(1)),
    syn        SimpleAggregateFunction(sum, UInt64)     CODEC(ZSTD(1)),
    ack        SimpleAggregateFunction(sum, UInt64)     CODEC(ZSTD(1)),
    fin        SimpleAggregateFunction(sum, UInt64)     CODEC(ZSTD(1)),
    rst        SimpleAggregateFunction(sum, UInt64)     CODEC(ZSTD(1)),
    first_seen SimpleAggregateFunction(min, DateTime64(9)) CODEC(ZSTD(1)),
    last_seen  SimpleAggregateFunction(max, DateTime64(9)) CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (minute, host, iface, dst_addr, src_addr, ip_proto, dst_port, src_port)
TTL toDate(minute) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- syn/ack/fin/rst: packets with that flag set (a SYN-ACK counts as one syn and one ack).
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
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x02) != 0) AS syn,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x10) != 0) AS ack,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x01) != 0) AS fin,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x04) != 0) AS rst,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM {database}.packets
GROUP BY minute, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port;

-- Talkers: what each source sends, and to how many destination ports and addresses (vertical
-- and horizontal scans). dst_ports / dst_addrs are uniq states: read them with uniqMerge.
-- dst_ports counts the ports of TCP and UDP packets only (other packets have no port: 0).
CREATE TABLE IF NOT EXISTS {database}.talkers_1m
(
    minute    DateTime                             CODEC(Delta, ZSTD(1)),
    host      LowCardinality(String),
    iface     LowCardinality(String),
    src_addr  IPv6                                 CODEC(ZSTD(1)),
    packets   SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    bytes     SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    dst_ports AggregateFunction(uniq, UInt16)      CODEC(ZSTD(1)),
    dst_addrs AggregateFunction(uniq, IPv6)        CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (minute, host, iface, src_addr)
TTL toDate(minute) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.talkers_1m_mv TO {database}.talkers_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    host,
    iface,
    src_addr,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    uniqStateIf(dst_port, ip_proto IN (6, 17)) AS dst_ports,
    uniqState(dst_addr) AS dst_addrs
FROM {database}.packets
GROUP BY minute, host, iface, src_addr;

-- DNS names: queries and responses by first question name and type; nxdomain = responses with
-- rcode 3. Packets without a parsed question name are not DNS names (dns_qname = '').
CREATE TABLE IF NOT EXISTS {database}.dns_names_1m
(
    minute    DateTime               CODEC(Delta, ZSTD(1)),
    host      LowCardinality(String),
    iface     LowCardinality(String),
    qname     String                 CODEC(ZSTD(1)),
    qtype     UInt16,
    queries   UInt64                 CODEC(ZSTD(1)),
    responses UInt64                 CODEC(ZSTD(1)),
    nxdomain  UInt64                 CODEC(ZSTD(1))
)
ENGINE = SummingMergeTree((queries, responses, nxdomain))
PARTITION BY toDate(minute)
ORDER BY (minute, host, iface, qname, qtype)
TTL toDate(minute) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.dns_names_1m_mv TO {database}.dns_names_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    host,
    iface,
    dns_qname AS qname,
    dns_qtype AS qtype,
    sumIf(sample_rate, dns_is_response = 0) AS queries,
    sumIf(sample_rate, dns_is_response = 1) AS responses,
    sumIf(sample_rate, dns_is_response = 1 AND dns_rcode = 3) AS nxdomain
FROM {database}.packets
WHERE dns_qname != ''
GROUP BY minute, host, iface, qname, qtype;

-- TLS server names of ClientHellos, with the distinct clients asking (uniq state).
CREATE TABLE IF NOT EXISTS {database}.tls_sni_1m
(
    minute        DateTime                             CODEC(Delta, ZSTD(1)),
    host          LowCardinality(String),
    iface         LowCardinality(String),
    sni           String                               CODEC(ZSTD(1)),
    client_hellos SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    clients       AggregateFunction(uniq, IPv6)        CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (minute, host, iface, sni)
TTL toDate(minute) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.tls_sni_1m_mv TO {database}.tls_sni_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    host,
    iface,
    tls_sni AS sni,
    sum(sample_rate) AS client_hellos,
    uniqState(src_addr) AS clients
FROM {database}.packets
WHERE tls_sni != ''
GROUP BY minute, host, iface, sni;

-- HTTP/1.x requests by Host header and method, with the distinct clients (uniq state).
CREATE TABLE IF NOT EXISTS {database}.http_hosts_1m
(
    minute    DateTime                             CODEC(Delta, ZSTD(1)),
    host      LowCardinality(String),
    iface     LowCardinality(String),
    http_host String                               CODEC(ZSTD(1)),
    method    LowCardinality(String),
    requests  SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    clients   AggregateFunction(uniq, IPv6)        CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (minute, host, iface, http_host, method)
TTL toDate(minute) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.http_hosts_1m_mv TO {database}.http_hosts_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    host,
    iface,
    http_host,
    http_method AS method,
    sum(sample_rate) AS requests,
    uniqState(src_addr) AS clients
FROM {database}.packets
WHERE http_method != ''
GROUP BY minute, host, iface, http_host, method;
