-- Sources sending the most bytes to this host. Counts are scaled by sample_rate.
SELECT
    IPv6NumToString(src_addr) AS source,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    uniqExact(dst_port) AS dst_ports
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
GROUP BY src_addr
ORDER BY bytes DESC
LIMIT {limit:UInt32}
