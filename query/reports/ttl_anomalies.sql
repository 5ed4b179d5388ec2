-- Sources whose TTL / hop limit varies (spoofed or multi-path sources).
-- A spoofed or multi-path source shows several distinct initial TTLs (rounded up to 32, 64, 128,
-- 255) or a wide spread. packets is scaled by sample_rate.
SELECT
    if(src_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(src_addr)), IPv6NumToString(src_addr)) AS source,
    sum(sample_rate) AS packets,
    min(ttl) AS min_ttl,
    max(ttl) AS max_ttl,
    uniqExact(multiIf(ttl <= 32, 32, ttl <= 64, 64, ttl <= 128, 128, 255)) AS initial_ttls
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND ip_version != 0
GROUP BY src_addr
HAVING max_ttl - min_ttl > 0
ORDER BY initial_ttls DESC, max_ttl - min_ttl DESC
LIMIT {limit:UInt32}
