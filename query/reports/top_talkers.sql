-- Sources sending the most bytes to this host. Counts are scaled by sample_rate.
-- dst_ports counts the distinct destination ports of TCP and UDP packets (others have none).
SELECT
    if(src_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(src_addr)), IPv6NumToString(src_addr)) AS source,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    uniqExactIf(dst_port, ip_proto IN (6, 17)) AS dst_ports
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
GROUP BY src_addr
ORDER BY bytes DESC
LIMIT {limit:UInt32}
