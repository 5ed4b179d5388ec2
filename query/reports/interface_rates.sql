-- Per host, interface and minute: packets and bits per second, and parse errors.
-- All counts are scaled by sample_rate.
SELECT
    host,
    iface,
    toStartOfMinute(ts) AS minute,
    sum(sample_rate) AS packets,
    round(packets / 60, 1) AS pps,
    round(8 * sum(pkt_len * sample_rate) / 60, 0) AS bps,
    sumIf(sample_rate, parse_error != '') AS parse_errors
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
GROUP BY host, iface, minute
ORDER BY minute DESC, packets DESC
LIMIT {limit:UInt32}
