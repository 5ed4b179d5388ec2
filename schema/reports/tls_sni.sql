-- TLS server names asked for in ClientHellos.
SELECT
    tls_sni AS server_name,
    count() AS client_hellos,
    uniqExact(src_addr) AS clients,
    groupUniqArray(5)(dst_port) AS ports
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND tls_sni != ''
GROUP BY tls_sni
ORDER BY client_hellos DESC
LIMIT {limit:UInt32}
