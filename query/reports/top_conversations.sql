-- 5-tuples with the most bytes.
-- src_country, src_asn (GeoIP) and src_name, dst_name (passive DNS: DNS answers, TLS SNI, HTTP
-- Host) come from packetlake enrich's dictionaries; '' and 0 when not loaded or not known.
-- They are looked up for the rows kept only.
SELECT
    if(src_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(src_addr)), IPv6NumToString(src_addr)) AS source,
    src_port,
    if(dst_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(dst_addr)), IPv6NumToString(dst_addr)) AS destination,
    dst_port,
    ip_proto,
    dictGet('geoip_country_dict', 'country_code', src_addr) AS src_country,
    dictGet('geoip_asn_dict', 'asn', src_addr) AS src_asn,
    dictGet('passive_dns_dict', 'name', tuple(src_addr)) AS src_name,
    dictGet('passive_dns_dict', 'name', tuple(dst_addr)) AS dst_name,
    packets,
    bytes,
    first_seen,
    last_seen
FROM
(
    SELECT
        src_addr, src_port, dst_addr, dst_port, ip_proto,
        sum(sample_rate) AS packets,
        sum(pkt_len * sample_rate) AS bytes,
        min(ts) AS first_seen,
        max(ts) AS last_seen
    FROM packets
    WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
    GROUP BY src_addr, src_port, dst_addr, dst_port, ip_proto
    ORDER BY bytes DESC
    LIMIT {limit:UInt32}
)
ORDER BY bytes DESC
