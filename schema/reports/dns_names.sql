-- Most queried DNS names, with how many answers came back NXDOMAIN (rcode 3).
SELECT
    dns_qname AS name,
    countIf(dns_is_response = 0) AS queries,
    countIf(dns_is_response = 1) AS responses,
    countIf(dns_is_response = 1 AND dns_rcode = 3) AS nxdomain,
    uniqExact(src_addr) AS clients
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND dns_qname != ''
GROUP BY dns_qname
ORDER BY queries + responses DESC
LIMIT {limit:UInt32}
