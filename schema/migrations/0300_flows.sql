-- Exact flow counters from the kernel (bpf/flows.h): every packet the program saw, before any
-- sampling or ring decision, counted per (5-tuple, vlan_id, ifindex, ip_version) in a per-CPU LRU
-- map. The collector reads the map every few seconds and sends DELTAS to the flows topic (one row
-- per flow that moved since its previous export by the same collector run), so a flow's counts
-- over any time range are sum(packets), sum(bytes), ... over its rows: always sum, never take the
-- latest row. Replays are harmless: the ingester inserts each Kafka batch with a dedup token, and
-- the window below drops a repeated insert. Unlike the packets table (and the flows_1m/flows_1h
-- rollups built from it), these counts are not affected by adaptive sampling.
--
-- ts: when the collector read the map (the delta covers the interval before it).
-- first_seen: the first packet of the kernel entry (an idle flow is deleted after export and
-- starts a new entry on its next packet); last_seen: the latest packet counted in this row.
-- syn/fin/rst/ack: TCP packets with that flag set. src_addr/dst_addr: IPv4 as IPv4-mapped IPv6,
-- '::' for non-IP frames (ip_version 0), which are counted too.
CREATE TABLE IF NOT EXISTS {database}.flows
(
    ts           DateTime64(9)          CODEC(Delta, ZSTD(1)),
    host         LowCardinality(String),
    iface        LowCardinality(String),
    collector_id UInt64,
    export_seq   UInt64                 CODEC(Delta, ZSTD(1)),
    ifindex      UInt32,
    vlan_id      UInt16,
    ip_version   UInt8,
    ip_proto     UInt8,
    src_addr     IPv6                   CODEC(ZSTD(1)),
    dst_addr     IPv6                   CODEC(ZSTD(1)),
    src_port     UInt16                 CODEC(ZSTD(1)),
    dst_port     UInt16                 CODEC(ZSTD(1)),
    packets      UInt64                 CODEC(ZSTD(1)),
    bytes        UInt64                 CODEC(ZSTD(1)),
    syn          UInt64                 CODEC(ZSTD(1)),
    fin          UInt64                 CODEC(ZSTD(1)),
    rst          UInt64                 CODEC(ZSTD(1)),
    ack          UInt64                 CODEC(ZSTD(1)),
    first_seen   DateTime64(9)          CODEC(Delta, ZSTD(1)),
    last_seen    DateTime64(9)          CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (host, iface, ts, dst_addr, src_addr, ip_proto, dst_port, src_port)
TTL toDate(ts) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;
