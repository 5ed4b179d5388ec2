-- Most queried DNS names, with how many answers came back NXDOMAIN (rcode 3).
-- Counts are scaled by sample_rate.
SELECT
    dns_qname AS name,
    sumIf(sample_rate, dns_is_response = 0) AS queries,
    sumIf(sample_rate, dns_is_response = 1) AS responses,
    sumIf(sample_rate, dns_is_response = 1 AND dns_rcode = 3) AS nxdomain,
    uniqExact(src_addr) AS clients
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND dns_qname != ''
GROUP BY dns_qname
ORDER BY queries + responses DESC
LIMIT {limit:UInt32}
