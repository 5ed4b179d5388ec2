-- Kernel drop reasons (bpf/drops.c): packets the kernel dropped after packetlake's program saw
-- them, counted per reason and flow by a tracepoint on skb:kfree_skb, which fires only for a
-- dropped packet. The collector reads its counters every few seconds and sends DELTAS to the
-- drops topic, so a count over any time range is sum(packets), sum(bytes) -- never the latest
-- row. Replays are harmless: the ingester inserts each Kafka batch with a dedup token (the
-- window below) and stores a message identity (host, run, export_seq, chunk) once.
--
-- ts: when the collector read the counters (the delta covers the interval before it).
-- reason: the kernel's enum skb_drop_reason name without SKB_DROP_REASON_ (NO_SOCKET,
-- NETFILTER_DROP, UDP_CSUM, SOCKET_RCVBUFF, TCP_LISTEN_OVERFLOW, ...), named from the
-- collector's kernel BTF; 'MAP_FULL' counts seen drops the kernel's table had no room for
-- (flow unknown). observed: 1 for packets received on the interface packetlake watches (it saw
-- them), 0 for every other drop on the host (per reason only: flow columns empty).
-- run: random per collector process (the drop counters restart with the process; collector_id
-- goes on across processes of a pinned run). bytes: from the MAC header on.
CREATE TABLE IF NOT EXISTS {database}.drops
(
    ts           DateTime64(9)          CODEC(Delta, ZSTD(1)),
    host         LowCardinality(String),
    iface        LowCardinality(String),
    collector_id UInt64,
    run          UInt64,
    export_seq   UInt64                 CODEC(Delta, ZSTD(1)),
    chunk        UInt32,
    observed     UInt8,
    reason       LowCardinality(String),
    ifindex      UInt32,
    ip_version   UInt8,
    ip_proto     UInt8,
    src_addr     IPv6                   CODEC(ZSTD(1)),
    dst_addr     IPv6                   CODEC(ZSTD(1)),
    src_port     UInt16                 CODEC(ZSTD(1)),
    dst_port     UInt16                 CODEC(ZSTD(1)),
    packets      UInt64                 CODEC(ZSTD(1)),
    bytes        UInt64                 CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (host, reason, ts, dst_addr, src_addr, ip_proto, dst_port, src_port)
TTL toDate(ts) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;
