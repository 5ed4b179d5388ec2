-- Destinations receiving SYNs that no client followed with a bare ACK (half-open handshakes).
-- Handshakes not completed from this host's point of view: the signature of SYN floods and
-- half-open scans. Counts are scaled by sample_rate.
SELECT
    if(dst_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(dst_addr)), IPv6NumToString(dst_addr)) AS destination,
    dst_port,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x12) = 0x02) AS syns,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x17) = 0x10) AS acks,
    uniqExactIf(src_addr, bitAnd(tcp_flags, 0x12) = 0x02) AS syn_sources,
    round(if(syns = 0, 0, 1 - least(acks, syns) / syns), 3) AS incomplete_ratio
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND ip_proto = 6
GROUP BY dst_addr, dst_port
HAVING syns > 0
ORDER BY syns - least(acks, syns) DESC
LIMIT {limit:UInt32}
