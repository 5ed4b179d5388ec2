-- Host sweep: one source probing many destination addresses.
--
-- A probe is an ICMP or ICMPv6 echo request (types 8 and 128) or timestamp request (13), a TCP
-- segment without ACK and RST, or a UDP datagram to a lower port than its source port (see
-- port_scan). Fires when a source probed at least host_sweep_min_hosts distinct destination
-- addresses in the window. score = hosts / host_sweep_min_hosts. Distinct addresses under
-- sampling are estimated like port_scan's ports.
SELECT
    replaceRegexpOne(IPv6NumToString(src_addr), '^::ffff:([0-9.]+)$', '\\1') AS subject,
    toUInt64(countIf(recorded > 1) + sumIf(rate, recorded = 1)) AS hosts,
    count() AS hosts_recorded,
    sum(packets) AS probes,
    arrayMap(a -> replaceRegexpOne(IPv6NumToString(a), '^::ffff:([0-9.]+)$', '\\1'),
             groupArray(16)(dst_addr)) AS sample_destinations,
    groupUniqArrayArray(4)(protos) AS protocols,
    hosts / {host_sweep_min_hosts:Float64} AS score,
    toUnixTimestamp64Milli(toDateTime64(min(first), 3)) AS window_start_ms,
    toUnixTimestamp64Milli(toDateTime64(max(last), 3)) AS window_end_ms,
    arrayMap(a -> replaceRegexpOne(IPv6NumToString(a), '^::ffff:([0-9.]+)$', '\\1'),
             arrayPushFront(groupArray(256)(dst_addr), src_addr)) AS addresses
FROM
(
    SELECT
        src_addr,
        dst_addr,
        count() AS recorded,
        sum(sample_rate) AS packets,
        max(sample_rate) AS rate,
        groupUniqArray(ip_proto) AS protos,
        min(ts) AS first,
        max(ts) AS last
    FROM detect_recent
    WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
      AND ((ip_proto = 1 AND icmp_type IN (8, 13)) OR (ip_proto = 58 AND icmp_type = 128)
           OR (ip_proto = 6 AND bitAnd(tcp_flags, 0x14) = 0) OR (ip_proto = 17 AND dst_port < src_port))
    GROUP BY src_addr, dst_addr
)
GROUP BY src_addr
HAVING hosts >= {host_sweep_min_hosts:Float64}
ORDER BY score DESC
LIMIT 1000
