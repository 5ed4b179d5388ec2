-- Encapsulated traffic by tunnel: type, id (VNI, GRE key, ERSPAN session, MPLS label) and the
-- endpoints of the IP header that carried it (scaled by sample_rate). Inner hosts and flows of
-- each tunnel: the other columns of the same rows.
SELECT
    tunnel_type,
    tunnel_id,
    if(tunnel_src BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(tunnel_src)), IPv6NumToString(tunnel_src)) AS tunnel_source,
    if(tunnel_dst BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(tunnel_dst)), IPv6NumToString(tunnel_dst)) AS tunnel_destination,
    max(tunnel_depth) AS max_depth,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    uniqExact(src_addr, dst_addr) AS inner_pairs
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND tunnel_depth > 0
GROUP BY tunnel_type, tunnel_id, tunnel_src, tunnel_dst
ORDER BY bytes DESC
LIMIT {limit:UInt32}
