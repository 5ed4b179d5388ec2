-- SYN flood: SYNs to one service (destination address and port) that few clients follow with an ACK.
--
-- A SYN is a segment with SYN and without ACK; a handshake the client completed shows as a
-- segment with ACK and without SYN, FIN or RST (the test of the syn_without_handshake report).
-- Counts are scaled by sample_rate. Fires when the SYN rate over the window reaches
-- syn_flood_min_rate and at most syn_flood_max_completed of those SYNs are matched by ACKs.
-- Per port, not per address: a scan sends one or two SYNs to each of many ports and is the
-- port_scan detector's (see detector/README.md). score = SYN rate / syn_flood_min_rate.
--
-- Every detector but volume_spike reads detect_recent: the last minutes of packets, ordered by
-- capture time so the window is all that is read (migration 0201); its rows are packets' rows.
-- Bound parameters (every detector gets all of them): since, until (the window, capture time),
-- window_seconds, and the thresholds, named like the flags of `packetlake detect`.
-- Columns the detector reads: subject, score, window_start_ms, window_end_ms, addresses; every
-- other column goes into the anomaly's evidence.
SELECT
    if(position(dst, ':') > 0, concat('[', dst, ']:', toString(dst_port)), concat(dst, ':', toString(dst_port))) AS subject,
    any(replaceRegexpOne(IPv6NumToString(dst_addr), '^::ffff:([0-9.]+)$', '\\1')) AS dst,
    dst_port,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x12) = 0x02) AS syns,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x17) = 0x10) AS acks,
    round(syns / {window_seconds:Float64}, 1) AS syn_rate,
    round(if(syns = 0, 1, least(acks, syns) / syns), 4) AS completed_ratio,
    uniqExactIf(src_addr, bitAnd(tcp_flags, 0x12) = 0x02) AS sources,
    arrayMap(a -> replaceRegexpOne(IPv6NumToString(a), '^::ffff:([0-9.]+)$', '\\1'),
             topKIf(5)(src_addr, bitAnd(tcp_flags, 0x12) = 0x02)) AS top_sources,
    syn_rate / {syn_flood_min_rate:Float64} AS score,
    toUnixTimestamp64Milli(toDateTime64(minIf(ts, bitAnd(tcp_flags, 0x12) = 0x02), 3)) AS window_start_ms,
    toUnixTimestamp64Milli(toDateTime64(maxIf(ts, bitAnd(tcp_flags, 0x12) = 0x02), 3)) AS window_end_ms,
    [dst] AS addresses
FROM detect_recent
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND ip_proto = 6
GROUP BY dst_addr, dst_port
HAVING syn_rate >= {syn_flood_min_rate:Float64} AND completed_ratio <= {syn_flood_max_completed:Float64}
ORDER BY score DESC
LIMIT 1000
