-- The traffic mix by EtherType and IP protocol.
SELECT
    eth_type,
    ip_version,
    multiIf(ip_proto = 1, 'icmp', ip_proto = 6, 'tcp', ip_proto = 17, 'udp', ip_proto = 58, 'icmpv6',
            ip_proto = 47, 'gre', ip_version = 0, '-', toString(ip_proto)) AS proto,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    round(100 * packets / sum(packets) OVER (), 2) AS pct_packets
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
GROUP BY eth_type, ip_version, ip_proto
ORDER BY packets DESC
LIMIT {limit:UInt32}
