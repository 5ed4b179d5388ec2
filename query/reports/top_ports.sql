-- Destination ports by packets, per transport protocol.
SELECT
    multiIf(ip_proto = 6, 'tcp', ip_proto = 17, 'udp', ip_proto = 132, 'sctp', toString(ip_proto)) AS proto,
    dst_port,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    uniqExact(src_addr) AS sources
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND ip_proto IN (6, 17, 132)
GROUP BY ip_proto, dst_port
ORDER BY packets DESC
LIMIT {limit:UInt32}
