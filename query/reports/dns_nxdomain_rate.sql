-- Per minute: DNS responses and the share that were NXDOMAIN. Counts are scaled by sample_rate.
SELECT
    toStartOfMinute(ts) AS minute,
    sumIf(sample_rate, dns_is_response = 1) AS responses,
    sumIf(sample_rate, dns_is_response = 1 AND dns_rcode = 3) AS nxdomain,
    round(if(responses = 0, 0, 100 * nxdomain / responses), 2) AS nxdomain_pct
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND dns_qname != ''
GROUP BY minute
ORDER BY minute
LIMIT {limit:UInt32}
