-- Port scan: one source probing many destination ports.
--
-- A probe is a TCP segment without ACK and RST (SYN, FIN, NULL and Xmas scans: every segment of
-- an established connection carries ACK), or a UDP datagram to a lower port than its source
-- port (a request to a service; replies come from the service port to a high one). Fires when a
-- source probed at least port_scan_min_ports distinct destination ports in the window, over any
-- number of destinations. score = ports / port_scan_min_ports.
--
-- Distinct counts under sampling: a port seen in two or more recorded probes is counted once; a
-- port seen in a single recorded probe stands for sample_rate ports (a scan probes each port with
-- one packet, so 1-in-N sampling records about one port in N). Without sampling this is exactly
-- the number of distinct ports.
SELECT
    replaceRegexpOne(IPv6NumToString(src_addr), '^::ffff:([0-9.]+)$', '\\1') AS subject,
    toUInt64(least(65536, countIf(recorded > 1) + sumIf(rate, recorded = 1))) AS ports,
    count() AS ports_recorded,
    sum(packets) AS probes,
    min(dst_port) AS lowest_port,
    max(dst_port) AS highest_port,
    arrayMap(a -> replaceRegexpOne(IPv6NumToString(a), '^::ffff:([0-9.]+)$', '\\1'),
             groupUniqArrayArray(16)(dsts)) AS destinations,
    groupUniqArrayArray(4)(protos) AS protocols,
    ports / {port_scan_min_ports:Float64} AS score,
    toUnixTimestamp64Milli(toDateTime64(min(first), 3)) AS window_start_ms,
    toUnixTimestamp64Milli(toDateTime64(max(last), 3)) AS window_end_ms,
    arrayConcat([subject], destinations) AS addresses
FROM
(
    SELECT
        src_addr,
        dst_port,
        count() AS recorded,
        sum(sample_rate) AS packets,
        max(sample_rate) AS rate,
        groupUniqArray(16)(dst_addr) AS dsts,
        groupUniqArray(ip_proto) AS protos,
        min(ts) AS first,
        max(ts) AS last
    FROM detect_recent
    WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
      AND ((ip_proto = 6 AND bitAnd(tcp_flags, 0x14) = 0) OR (ip_proto = 17 AND dst_port < src_port))
    GROUP BY src_addr, dst_port
)
GROUP BY src_addr
HAVING ports >= {port_scan_min_ports:Float64}
ORDER BY score DESC
LIMIT 1000
