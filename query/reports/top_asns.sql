-- Autonomous systems sending the most bytes to this host, by the GeoIP ASN dictionary
-- (packetlake enrich --geoip-asn); AS 0 holds the sources it does not cover, and everything
-- while no database is loaded. Counts are scaled by sample_rate.
SELECT
    dictGet('geoip_asn_dict', 'asn', src_addr) AS asn,
    dictGet('geoip_asn_dict', 'asn_org', src_addr) AS as_org,
    sum(packets) AS packets,
    sum(bytes) AS bytes,
    count() AS sources
FROM
(
    SELECT src_addr, sum(sample_rate) AS packets, sum(pkt_len * sample_rate) AS bytes
    FROM packets
    WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
    GROUP BY src_addr
)
GROUP BY asn, as_org
ORDER BY bytes DESC, asn
LIMIT {limit:UInt32}
