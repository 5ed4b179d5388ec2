-- Volume spike: a destination receiving far more packets in the window than in its own recent
-- past (the baseline: the volume_baseline_seconds before the window).
--
-- Reads detect_dst_1s (packets per second per destination, migration 0200), not packets: the
-- baseline spans minutes, and reading minutes of packets every cycle costs in proportion to the
-- packet rate. The baseline is cut into buckets as long as the window; a bucket without packets
-- counts as zero. With mean and standard deviation of those bucket rates, the threshold is
--   max(volume_min_rate, volume_factor * mean, mean + volume_sigmas * stddev)
-- and the detector fires when the window's rate reaches it (why this rather than an EWMA: see
-- detector/README.md). A destination never seen before has a zero baseline and so is held to
-- volume_min_rate alone. score = rate / threshold.
WITH
    toDateTime({since:DateTime64(9)}) AS window_from,
    toDateTime({until:DateTime64(9)}) AS window_to,
    greatest(1, toUInt32(round({window_seconds:Float64}))) AS bucket_seconds,
    greatest(1, intDiv({volume_baseline_seconds:UInt32}, bucket_seconds)) AS buckets,
    window_from - buckets * bucket_seconds AS baseline_from
SELECT
    replaceRegexpOne(IPv6NumToString(dst_addr), '^::ffff:([0-9.]+)$', '\\1') AS subject,
    sumIf(bucket_packets, bucket = -1) AS packets,
    sumIf(bucket_bytes, bucket = -1) AS bytes,
    round(packets / {window_seconds:Float64}, 1) AS rate,
    round(sumIf(bucket_packets, bucket >= 0) / (buckets * bucket_seconds), 3) AS baseline_mean,
    round(sqrt(greatest(0, sumIf(pow(bucket_packets / bucket_seconds, 2), bucket >= 0) / buckets - pow(baseline_mean, 2))), 3) AS baseline_stddev,
    buckets AS baseline_buckets,
    round(greatest({volume_min_rate:Float64}, {volume_factor:Float64} * baseline_mean,
                   baseline_mean + {volume_sigmas:Float64} * baseline_stddev), 1) AS threshold,
    anyIf(bucket_protocols, bucket = -1) AS protocols,
    rate / threshold AS score,
    toUnixTimestamp64Milli(toDateTime64(minIf(first, bucket = -1), 3)) AS window_start_ms,
    toUnixTimestamp64Milli(toDateTime64(maxIf(last, bucket = -1), 3)) AS window_end_ms,
    [subject] AS addresses
FROM
(
    SELECT
        dst_addr,
        if(ts >= window_from, -1, intDiv(toUInt32(ts) - toUInt32(baseline_from), bucket_seconds)) AS bucket,
        sum(packets) AS bucket_packets,
        sum(bytes) AS bucket_bytes,
        sumMap(map(toString(ip_proto), packets)) AS bucket_protocols,
        min(ts) AS first,
        max(ts) AS last
    FROM detect_dst_1s
    WHERE ts >= baseline_from AND ts <= window_to
    GROUP BY dst_addr, bucket
)
GROUP BY dst_addr
HAVING packets > 0 AND rate >= threshold
ORDER BY score DESC
LIMIT 1000
