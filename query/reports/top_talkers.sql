-- Sources sending the most bytes to this host. Counts are scaled by sample_rate.
-- dst_ports counts the distinct destination ports of TCP and UDP packets (others have none).
-- country, asn and as_org come from the GeoIP dictionaries, name from passive DNS (packetlake
-- enrich); '' and 0 when not loaded or not known. They are looked up for the rows kept only.
SELECT
    if(src_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(src_addr)), IPv6NumToString(src_addr)) AS source,
    dictGet('geoip_country_dict', 'country_code', src_addr) AS country,
    dictGet('geoip_asn_dict', 'asn', src_addr) AS asn,
    dictGet('geoip_asn_dict', 'asn_org', src_addr) AS as_org,
    dictGet('passive_dns_dict', 'name', tuple(src_addr)) AS name,
    packets,
    bytes,
    dst_ports
FROM
(
    SELECT
        src_addr,
        sum(sample_rate) AS packets,
        sum(pkt_len * sample_rate) AS bytes,
        uniqExactIf(dst_port, ip_proto IN (6, 17)) AS dst_ports
    FROM packets
    WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
    GROUP BY src_addr
    ORDER BY bytes DESC
    LIMIT {limit:UInt32}
)
ORDER BY bytes DESC
