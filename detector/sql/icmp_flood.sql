-- ICMP flood: ICMP and ICMPv6 packets to one destination at a high rate.
--
-- Every ICMP type counts (echo requests, and errors, which a reflection attack sends). Fires when
-- the packet rate over the window, scaled by sample_rate, reaches icmp_flood_min_rate.
-- score = rate / icmp_flood_min_rate.
SELECT
    replaceRegexpOne(IPv6NumToString(dst_addr), '^::ffff:([0-9.]+)$', '\\1') AS subject,
    sum(sample_rate) AS packets,
    sum(toUInt64(pkt_len) * sample_rate) AS bytes,
    round(packets / {window_seconds:Float64}, 1) AS rate,
    uniqExact(src_addr) AS sources,
    arrayMap(a -> replaceRegexpOne(IPv6NumToString(a), '^::ffff:([0-9.]+)$', '\\1'), topK(5)(src_addr)) AS top_sources,
    topK(3)(icmp_type) AS top_types,
    rate / {icmp_flood_min_rate:Float64} AS score,
    toUnixTimestamp64Milli(toDateTime64(min(ts), 3)) AS window_start_ms,
    toUnixTimestamp64Milli(toDateTime64(max(ts), 3)) AS window_end_ms,
    [subject] AS addresses
FROM detect_recent
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND ip_proto IN (1, 58)
GROUP BY dst_addr
HAVING rate >= {icmp_flood_min_rate:Float64}
ORDER BY score DESC
LIMIT 1000
