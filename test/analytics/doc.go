// Package analytics checks packetlake's analytics layer — the rollup tables and their
// materialized views (schema/migrations/01xx), the storage cost of packets, the named reports
// (query/reports) and the Grafana dashboards (deployments/grafana) — against a real ClickHouse
// holding a known set of packets.
//
// The known set is the shared captures (the tcpdump and ja4 test suites) run through the very
// BPF program and decoder of `packetlake decode`, moved to the last few hours so no TTL drops
// them, plus synthetic packets with sample_rate > 1 (the kernel's adaptive sampling) that the
// captures cannot give: scans, floods, jumbo frames whose bytes × sample_rate overflow 32 bits,
// DNS NXDOMAIN, fragments. Dataset holds both as record.Packet, so tests compute the expected
// answers in Go from the same rows ClickHouse was given.
package analytics
