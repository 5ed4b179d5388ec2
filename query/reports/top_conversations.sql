-- 5-tuples with the most bytes.
SELECT
    IPv6NumToString(src_addr) AS source,
    src_port,
    IPv6NumToString(dst_addr) AS destination,
    dst_port,
    ip_proto,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
GROUP BY src_addr, src_port, dst_addr, dst_port, ip_proto
ORDER BY bytes DESC
LIMIT {limit:UInt32}
