-- The packet table. Its columns must equal schema.Columns (names and types, in order): a test
-- applies the migrations to a real ClickHouse and compares system.columns with it.
--
-- ORDER BY: reports ask "who talked to whom, when" over a time range. toStartOfHour(ts) first
-- lets a time filter skip whole hours of granules; dst_addr, src_addr next keep each
-- conversation's rows together within the hour, so GROUP BY src/dst reads contiguous granules
-- and the repeating addresses, ports and MACs compress well; ts last orders a conversation
-- in time. An hourly (not raw ts) prefix keeps the address columns useful for index pruning.
-- PARTITION BY day: retention drops whole partitions; a day is coarse enough to keep the
-- part count low at Mpps.
-- Codecs: ts and seq grow within a conversation, so Delta leaves small numbers for ZSTD
-- (DoubleDelta only pays on regular intervals, which packets do not have); ZSTD(1) everywhere
-- else, LowCardinality for the few distinct strings per part.
-- non_replicated_deduplication_window: the ingester tags every INSERT with a token built from
-- the Kafka offsets it covers; a replay after a crash re-sends the same token and ClickHouse
-- drops it. The window must cover the inserts made between a batch's insert and its replay:
-- at most one uncommitted batch per partition plus what other members insert meanwhile.
-- TTL is left to a later migration (retention per deployment).
CREATE TABLE IF NOT EXISTS {database}.packets
(
    ts              DateTime64(9)          CODEC(Delta, ZSTD(1)),
    host            LowCardinality(String) CODEC(ZSTD(1)),
    iface           LowCardinality(String) CODEC(ZSTD(1)),
    collector_id    UInt64                 CODEC(ZSTD(1)),
    seq             UInt64                 CODEC(Delta, ZSTD(1)),
    ifindex         UInt32                 CODEC(ZSTD(1)),
    pkt_len         UInt32                 CODEC(ZSTD(1)),
    src_mac         UInt64                 CODEC(ZSTD(1)),
    dst_mac         UInt64                 CODEC(ZSTD(1)),
    eth_type        UInt16                 CODEC(ZSTD(1)),
    vlan_id         UInt16                 CODEC(ZSTD(1)),
    inner_vlan_id   UInt16                 CODEC(ZSTD(1)),
    ip_version      UInt8                  CODEC(ZSTD(1)),
    src_addr        IPv6                   CODEC(ZSTD(1)),
    dst_addr        IPv6                   CODEC(ZSTD(1)),
    ip_proto        UInt8                  CODEC(ZSTD(1)),
    ttl             UInt8                  CODEC(ZSTD(1)),
    tos             UInt8                  CODEC(ZSTD(1)),
    ip_len          UInt16                 CODEC(ZSTD(1)),
    ip_id           UInt32                 CODEC(ZSTD(1)),
    ip_flags        UInt8                  CODEC(ZSTD(1)),
    frag_offset     UInt16                 CODEC(ZSTD(1)),
    flow_label      UInt32                 CODEC(ZSTD(1)),
    ip6_ext         UInt8                  CODEC(ZSTD(1)),
    src_port        UInt16                 CODEC(ZSTD(1)),
    dst_port        UInt16                 CODEC(ZSTD(1)),
    tcp_flags       UInt16                 CODEC(ZSTD(1)),
    tcp_seq         UInt32                 CODEC(ZSTD(1)),
    tcp_ack         UInt32                 CODEC(ZSTD(1)),
    tcp_window      UInt16                 CODEC(ZSTD(1)),
    icmp_type       UInt8                  CODEC(ZSTD(1)),
    icmp_code       UInt8                  CODEC(ZSTD(1)),
    payload_len     UInt16                 CODEC(ZSTD(1)),
    dns_id          UInt16                 CODEC(ZSTD(1)),
    dns_is_response UInt8                  CODEC(ZSTD(1)),
    dns_qname       String                 CODEC(ZSTD(1)),
    dns_qtype       UInt16                 CODEC(ZSTD(1)),
    dns_rcode       UInt8                  CODEC(ZSTD(1)),
    dns_answers     UInt16                 CODEC(ZSTD(1)),
    tls_sni         String                 CODEC(ZSTD(1)),
    http_method     LowCardinality(String) CODEC(ZSTD(1)),
    http_host       String                 CODEC(ZSTD(1)),
    http_path       String                 CODEC(ZSTD(1)),
    sample_rate     UInt32                 CODEC(ZSTD(1)),
    parse_error     LowCardinality(String) CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (toStartOfHour(ts), dst_addr, src_addr, ts)
SETTINGS non_replicated_deduplication_window = 10000;
