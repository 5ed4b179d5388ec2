package detector

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// The anomaly kinds, one detector and one SQL file (sql/<kind>.sql) each.
const (
	SYNFlood    = "syn_flood"
	PortScan    = "port_scan"
	HostSweep   = "host_sweep"
	ICMPFlood   = "icmp_flood"
	UDPFlood    = "udp_flood"
	DNSTunnel   = "dns_tunnel"
	VolumeSpike = "volume_spike"
	TCPHealth   = "tcp_health"
)

// Kinds lists every detector, in the order a cycle reports them.
var Kinds = []string{SYNFlood, PortScan, HostSweep, ICMPFlood, UDPFlood, DNSTunnel, VolumeSpike, TCPHealth}

//go:embed sql/*.sql
var sqlFiles embed.FS

// detector is one named SQL query. Its result rows are anomalies: the columns subject, score,
// window_start_ms, window_end_ms and addresses are read by name, every other column becomes a
// key of the evidence object.
type detector struct {
	kind    string
	sql     string
	version string // kind@<first 12 hex digits of the SQL's SHA-256>
}

// loadDetectors returns the detectors of kinds (all if empty), with their SQL.
func loadDetectors(kinds []string) ([]detector, error) {
	if len(kinds) == 0 {
		kinds = Kinds
	}
	var out []detector
	for _, k := range Kinds {
		if !slices.Contains(kinds, k) {
			continue
		}
		b, err := sqlFiles.ReadFile("sql/" + k + ".sql")
		if err != nil {
			return nil, fmt.Errorf("detector %s: %w", k, err)
		}
		sum := sha256.Sum256(b)
		out = append(out, detector{kind: k, sql: string(b), version: k + "@" + hex.EncodeToString(sum[:6])})
	}
	return out, nil
}

// SQL returns the text of a detector's query, as `packetlake detect` runs it: users can run the
// same file by hand with clickhouse-client --param_since=... and the threshold parameters.
func SQL(kind string) (string, error) {
	b, err := sqlFiles.ReadFile("sql/" + kind + ".sql")
	if err != nil {
		return "", fmt.Errorf("no detector %q (have %s)", kind, strings.Join(Kinds, ", "))
	}
	return string(b), nil
}
