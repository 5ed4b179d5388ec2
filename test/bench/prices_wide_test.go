package bench

import (
	"fmt"
	"strings"
	"testing"
)

// Fewer, wider rollup tables (issue #18), bench-only: one table per tier for the three L7 name
// families (DNS names, TLS SNI, HTTP hosts) in place of six, fed by one view per tier in place
// of six. kind says which family a row is; packets counts what each family counted (DNS
// queries, ClientHellos, HTTP requests), responses and nxdomain are DNS's, clients is the uniq
// state of the TLS and HTTP clients (DNS rows leave it empty, as dns_names has none). A packet
// is at most one of the three (the parser fills one L7 kind per packet).
const wideL7DDL = `
CREATE TABLE {db}.l7_names_1m
(
    minute    DateTime                             CODEC(Delta, ZSTD(1)),
    host      LowCardinality(String),
    iface     LowCardinality(String),
    kind      Enum8('dns' = 1, 'tls' = 2, 'http' = 3),
    name      String                               CODEC(ZSTD(1)),
    qtype     UInt16,
    method    LowCardinality(String),
    packets   SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    responses SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    nxdomain  SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    clients   AggregateFunction(uniq, IPv6)        CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (minute, host, iface, kind, name, qtype, method)
TTL toDate(minute) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW {db}.l7_names_1m_mv TO {db}.l7_names_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    host,
    iface,
    multiIf(dns_qname != '', 'dns', tls_sni != '', 'tls', 'http') AS kind,
    multiIf(dns_qname != '', dns_qname, tls_sni != '', tls_sni, http_host) AS name,
    dns_qtype AS qtype,
    http_method AS method,
    sumIf(sample_rate, dns_qname = '' OR dns_is_response = 0) AS packets,
    sumIf(sample_rate, dns_qname != '' AND dns_is_response = 1) AS responses,
    sumIf(sample_rate, dns_qname != '' AND dns_is_response = 1 AND dns_rcode = 3) AS nxdomain,
    uniqStateIf(src_addr, dns_qname = '') AS clients
FROM {db}.packets
WHERE dns_qname != '' OR tls_sni != '' OR http_method != ''
GROUP BY minute, host, iface, kind, name, qtype, method;

CREATE TABLE {db}.l7_names_1h
(
    hour      DateTime                             CODEC(Delta, ZSTD(1)),
    host      LowCardinality(String),
    iface     LowCardinality(String),
    kind      Enum8('dns' = 1, 'tls' = 2, 'http' = 3),
    name      String                               CODEC(ZSTD(1)),
    qtype     UInt16,
    method    LowCardinality(String),
    packets   SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    responses SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    nxdomain  SimpleAggregateFunction(sum, UInt64) CODEC(ZSTD(1)),
    clients   AggregateFunction(uniq, IPv6)        CODEC(ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, host, iface, kind, name, qtype, method)
TTL toDate(hour) + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW {db}.l7_names_1h_mv TO {db}.l7_names_1h AS
SELECT
    toStartOfHour(minute) AS hour,
    host, iface, kind, name, qtype, method,
    sum(packets) AS packets,
    sum(responses) AS responses,
    sum(nxdomain) AS nxdomain,
    uniqMergeState(clients) AS clients
FROM {db}.l7_names_1m
GROUP BY hour, host, iface, kind, name, qtype, method`

// createWideL7 creates the wide L7 tables and views in db.
func createWideL7(tb testing.TB, db string) { execAll(tb, wideL7DDL)(db) }

// isL7View says whether a view is one of the six that the wide L7 tables replace.
func isL7View(name string) bool {
	return strings.HasPrefix(name, "dns_names_") || strings.HasPrefix(name, "tls_sni_") || strings.HasPrefix(name, "http_hosts_")
}

// wideL7Checks read each family back from the wide tables, as the family's own table is read,
// against the same aggregates over packets as the family's own check.
func wideL7Checks() []rollupCheck {
	read := map[string]string{
		"dns_names":  "SELECT %[2]s, host, iface, name, qtype, sum(packets), sum(responses), sum(nxdomain) FROM %[1]s WHERE kind = 'dns' GROUP BY ALL ORDER BY ALL",
		"tls_sni":    "SELECT %[2]s, host, iface, name, sum(packets), uniqMerge(clients) FROM %[1]s WHERE kind = 'tls' GROUP BY ALL ORDER BY ALL",
		"http_hosts": "SELECT %[2]s, host, iface, name, method, sum(packets), uniqMerge(clients) FROM %[1]s WHERE kind = 'http' GROUP BY ALL ORDER BY ALL",
	}
	var out []rollupCheck
	for _, c := range rollupChecks() {
		fam, tier, ok := strings.Cut(c.table, "_1")
		if q, isL7 := read[fam]; ok && isL7 {
			bucket := map[string]string{"m": "minute", "h": "hour"}[tier]
			out = append(out, rollupCheck{table: "l7_names_1" + tier + " as " + fam, merged: fmt.Sprintf(q, "l7_names_1"+tier, bucket), direct: c.direct})
		}
	}
	return out
}
