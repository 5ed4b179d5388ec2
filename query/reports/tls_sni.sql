-- TLS server names asked for in ClientHellos (scaled by sample_rate).
SELECT
    tls_sni AS server_name,
    sum(sample_rate) AS client_hellos,
    uniqExact(src_addr) AS clients,
    arraySort(groupUniqArray(5)(dst_port)) AS ports
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND tls_sni != ''
GROUP BY tls_sni
ORDER BY client_hellos DESC
LIMIT {limit:UInt32}
