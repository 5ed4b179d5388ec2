-- IP fragments by source: first fragments (MF set, offset 0) and later ones (offset > 0).
-- Fragment counts are scaled by sample_rate; datagrams counts the distinct fragment ids recorded.
SELECT
    if(src_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(src_addr)), IPv6NumToString(src_addr)) AS source,
    ip_version,
    sumIf(sample_rate, bitAnd(ip_flags, 1) = 1 AND frag_offset = 0) AS first_fragments,
    sumIf(sample_rate, frag_offset > 0) AS later_fragments,
    uniqExact(ip_id) AS datagrams,
    max(frag_offset) AS max_offset
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
  AND (bitAnd(ip_flags, 1) = 1 OR frag_offset > 0)
GROUP BY src_addr, ip_version
ORDER BY first_fragments + later_fragments DESC
LIMIT {limit:UInt32}
