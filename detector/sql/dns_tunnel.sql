-- DNS tunnelling: one client asking for many long, random-looking names under one parent domain.
--
-- The client is the source of a query or the destination of a response, so a tunnelling host is
-- seen whether the collector watches the DNS server (queries arrive) or the client (responses
-- arrive). The parent is the registrable domain (cutToFirstSignificantSubdomain: example.co.uk,
-- packetlake.test); the rest of the name is the subdomain a tunnel encodes its data in. Over the
-- distinct subdomains of a (client, parent) in the window: their number, average length and
-- average Shannon entropy of their characters (dots left out), in bits per character.
-- Fires when names >= dns_tunnel_min_names AND average length >= dns_tunnel_min_length AND
-- average entropy >= dns_tunnel_min_entropy: many names alone is a busy CDN, long names alone a
-- few hashed labels, random-looking alone a DGA name or two. Distinct names under sampling are
-- estimated like port_scan's ports. score = names / dns_tunnel_min_names.
SELECT
    concat(replaceRegexpOne(IPv6NumToString(client), '^::ffff:([0-9.]+)$', '\\1'), ' ', parent) AS subject,
    replaceRegexpOne(IPv6NumToString(client), '^::ffff:([0-9.]+)$', '\\1') AS client_addr,
    parent,
    toUInt64(countIf(recorded > 1) + sumIf(rate, recorded = 1)) AS names,
    count() AS names_recorded,
    sum(packets) AS packets,
    round(avg(length(sub)), 1) AS avg_length,
    max(length(sub)) AS max_length,
    round(avg(arrayReduce('entropy', splitByString('', replaceAll(sub, '.', '')))), 3) AS avg_entropy,
    groupArray(3)(concat(sub, '.', parent)) AS sample_names,
    arrayMap(a -> replaceRegexpOne(IPv6NumToString(a), '^::ffff:([0-9.]+)$', '\\1'), groupUniqArrayArray(8)(servers)) AS dns_servers,
    names / {dns_tunnel_min_names:Float64} AS score,
    toUnixTimestamp64Milli(toDateTime64(min(first), 3)) AS window_start_ms,
    toUnixTimestamp64Milli(toDateTime64(max(last), 3)) AS window_end_ms,
    arrayConcat([client_addr], dns_servers) AS addresses
FROM
(
    SELECT
        if(dns_is_response = 1, dst_addr, src_addr) AS client,
        lower(dns_qname) AS qname,
        if(cutToFirstSignificantSubdomain(qname) = '', qname, cutToFirstSignificantSubdomain(qname)) AS parent,
        substring(qname, 1, greatest(0, length(qname) - length(parent) - 1)) AS sub,
        count() AS recorded,
        sum(sample_rate) AS packets,
        max(sample_rate) AS rate,
        groupUniqArray(4)(if(dns_is_response = 1, src_addr, dst_addr)) AS servers,
        min(ts) AS first,
        max(ts) AS last
    FROM detect_recent
    WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)} AND dns_qname != ''
    GROUP BY client, qname
)
WHERE sub != ''
GROUP BY client, parent
HAVING names >= {dns_tunnel_min_names:Float64}
   AND avg_length >= {dns_tunnel_min_length:Float64}
   AND avg_entropy >= {dns_tunnel_min_entropy:Float64}
ORDER BY score DESC
LIMIT 1000
