-- Countries sending the most bytes to this host, by the GeoIP dictionaries (packetlake enrich
-- --geoip-country or --geoip-city); '' holds the sources no network of the database covers,
-- and everything while no database is loaded. Counts are scaled by sample_rate.
SELECT
    dictGet('geoip_country_dict', 'country_code', src_addr) AS country,
    dictGet('geoip_country_dict', 'country', src_addr) AS country_name,
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
GROUP BY country, country_name
ORDER BY bytes DESC, country
LIMIT {limit:UInt32}
