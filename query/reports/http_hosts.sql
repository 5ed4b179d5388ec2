-- HTTP/1.x Host headers of requests, with methods seen and the latest path.
-- Requests are scaled by sample_rate.
SELECT
    http_host AS host,
    sum(sample_rate) AS requests,
    arraySort(groupUniqArray(5)(http_method)) AS methods,
    argMax(http_path, ts) AS sample_path,
    uniqExact(src_addr) AS clients
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND http_method != ''
GROUP BY http_host
ORDER BY requests DESC
LIMIT {limit:UInt32}
