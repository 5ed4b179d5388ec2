-- HTTP/1.x Host headers of requests, with methods seen.
SELECT
    http_host AS host,
    count() AS requests,
    groupUniqArray(5)(http_method) AS methods,
    any(http_path) AS sample_path,
    uniqExact(src_addr) AS clients
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND http_method != ''
GROUP BY http_host
ORDER BY requests DESC
LIMIT {limit:UInt32}
