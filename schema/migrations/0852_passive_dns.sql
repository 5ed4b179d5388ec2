-- Issue 19, passive DNS: the names seen for an address, so reports and the console show a name
-- next to it without a reverse lookup. Sources: 'dns' (a response's question name tied to each
-- A/AAAA answer, packets.dns_answer_addrs), 'sni' (a ClientHello's server name tied to the
-- address it was sent to) and 'http' (an HTTP/1.x Host tied likewise). `packetlake enrich`
-- fills it by a periodic INSERT ... SELECT over the packets of the last cycle (no materialized
-- view on packets: ingest stays as cheap as it is). min/max aggregates make a window read twice
-- harmless, so cycles overlap and a restart re-reads without double counting.
CREATE TABLE IF NOT EXISTS {database}.passive_dns
(
    addr       IPv6,
    name       String,
    source     LowCardinality(String),
    first_seen SimpleAggregateFunction(min, DateTime64(9)),
    last_seen  SimpleAggregateFunction(max, DateTime64(9))
)
ENGINE = AggregatingMergeTree
ORDER BY (addr, name, source)
SETTINGS non_replicated_deduplication_window = 10000;

-- An address's name: the one seen last, whatever the source. dictGet needs tuple(addr).
CREATE DICTIONARY IF NOT EXISTS {database}.passive_dns_dict
(
    addr IPv6,
    name String
)
PRIMARY KEY addr
SOURCE(CLICKHOUSE(QUERY 'SELECT addr, argMax(name, last) AS name FROM (SELECT addr, name, max(last_seen) AS last FROM {database}.passive_dns GROUP BY addr, name) GROUP BY addr'))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(MIN 60 MAX 120);
