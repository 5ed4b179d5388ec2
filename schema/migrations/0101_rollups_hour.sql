-- Hourly rollups, for ranges of weeks to a year. Each is fed from its minute table (a view on the
-- minute table sees the block the minute view just wrote, already grouped by minute, so the hour
-- views aggregate far fewer rows than the packets of an insert): sums add up, min/max fold and
-- uniq states merge (uniqMergeState), so an hourly row equals the aggregate over the packets of
-- that hour exactly as the minute rows do (analytics/rollups_test.go checks it).
--
-- Deduplication: the same window as the minute tables, for the same reason (a replayed insert
-- into packets reaches these tables through two views; both must drop it).
--
-- TTL (retention) default: 365 days. Partitions are months, so with ttl_only_drop_parts a month
-- is dropped once its last hour expired (kept 365 to ~396 days). Override per deployment with
--   ALTER TABLE <db>.flows_1h MODIFY TTL toDate(hour) + INTERVAL 730 DAY
-- (see schema/STORAGE.md); no later migration touches these TTLs.

CREATE TABLE IF NOT EXISTS {database}.flows_1h
(
    hour       DateTime                                 CODEC(Delta, ZSTD(1)),
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
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, host, iface, dst_addr, src_addr, ip_proto, dst_port, src_port)
TTL toDate(hour) + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

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
    sum(packets) AS packets,
    sum(bytes) AS bytes,
    sum(syn) AS syn,
    sum(ack) AS ack,
    sum(fin) AS fin,
    sum(rst) AS rst,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen
FROM {database}.flows_1m
GROUP BY hour, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port;

CREATE TABLE IF NOT EXISTS {database}.talkers_1h
(
    hour      DateTime                             CODEC(Delta, ZSTD(1)),
    host      LowCardinality(String),
    iface     LowCardinality(String),
    src_addr  IPv6                                 CODEC(ZSTD(1)),
    packets   SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    bytes     SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    dst_ports AggregateFunction(uniq, UInt16)      CODEC(ZSTD(1)),
    dst_addrs AggregateFunction(uniq, IPv6)        CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, host, iface, src_addr)
TTL toDate(hour) + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.talkers_1h_mv TO {database}.talkers_1h AS
SELECT
    toStartOfHour(minute) AS hour,
    host,
    iface,
    src_addr,
    sum(packets) AS packets,
    sum(bytes) AS bytes,
    uniqMergeState(dst_ports) AS dst_ports,
    uniqMergeState(dst_addrs) AS dst_addrs
FROM {database}.talkers_1m
GROUP BY hour, host, iface, src_addr;

CREATE TABLE IF NOT EXISTS {database}.dns_names_1h
(
    hour      DateTime               CODEC(Delta, ZSTD(1)),
    host      LowCardinality(String),
    iface     LowCardinality(String),
    qname     String                 CODEC(ZSTD(1)),
    qtype     UInt16,
    queries   UInt64                 CODEC(ZSTD(1)),
    responses UInt64                 CODEC(ZSTD(1)),
    nxdomain  UInt64                 CODEC(ZSTD(1))
)
ENGINE = SummingMergeTree((queries, responses, nxdomain))
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, host, iface, qname, qtype)
TTL toDate(hour) + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.dns_names_1h_mv TO {database}.dns_names_1h AS
SELECT
    toStartOfHour(minute) AS hour,
    host,
    iface,
    qname,
    qtype,
    sum(queries) AS queries,
    sum(responses) AS responses,
    sum(nxdomain) AS nxdomain
FROM {database}.dns_names_1m
GROUP BY hour, host, iface, qname, qtype;

CREATE TABLE IF NOT EXISTS {database}.tls_sni_1h
(
    hour          DateTime                             CODEC(Delta, ZSTD(1)),
    host          LowCardinality(String),
    iface         LowCardinality(String),
    sni           String                               CODEC(ZSTD(1)),
    client_hellos SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    clients       AggregateFunction(uniq, IPv6)        CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, host, iface, sni)
TTL toDate(hour) + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.tls_sni_1h_mv TO {database}.tls_sni_1h AS
SELECT
    toStartOfHour(minute) AS hour,
    host,
    iface,
    sni,
    sum(client_hellos) AS client_hellos,
    uniqMergeState(clients) AS clients
FROM {database}.tls_sni_1m
GROUP BY hour, host, iface, sni;

CREATE TABLE IF NOT EXISTS {database}.http_hosts_1h
(
    hour      DateTime                             CODEC(Delta, ZSTD(1)),
    host      LowCardinality(String),
    iface     LowCardinality(String),
    http_host String                               CODEC(ZSTD(1)),
    method    LowCardinality(String),
    requests  SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    clients   AggregateFunction(uniq, IPv6)        CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, host, iface, http_host, method)
TTL toDate(hour) + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.http_hosts_1h_mv TO {database}.http_hosts_1h AS
SELECT
    toStartOfHour(minute) AS hour,
    host,
    iface,
    http_host,
    method,
    sum(requests) AS requests,
    uniqMergeState(clients) AS clients
FROM {database}.http_hosts_1m
GROUP BY hour, host, iface, http_host, method;
