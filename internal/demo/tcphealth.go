package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/packetlake/packetlake/query"
)

// TCPService is one row of the tcp_health report (per service and direction).
type TCPService struct {
	Flows, Handshakes, Retransmissions, OutOfOrder uint64
	HandshakeRTTp50ms                              float64 // -1: no handshake recorded
}

// fillTCPHealth reads the tcp_health report over the run into the summary.
func (r *runner) fillTCPHealth(ctx context.Context, sum *Summary) error {
	// tcp_health over the run, as `packetlake query tcp_health` prints it; every row: the scan
	// makes each closed port probed a one-SYN "service", and ties are in no fixed order.
	rep, err := query.ReportByName("tcp_health")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	p := query.Params{Since: sum.Start, Until: time.Now().Add(time.Second), Limit: 100000}
	if err := query.RunSQL(ctx, r.queryConfig(), rep.SQL, p, "JSONEachRow", &b); err != nil {
		return err
	}
	sum.TCPHealth = map[string]TCPService{}
	for _, line := range bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var s struct {
			Service, Direction                 string
			Port                               uint16
			Flows, Handshakes, Retransmissions uint64
			OutOfOrder                         uint64   `json:"out_of_order"`
			RTTp50                             *float64 `json:"handshake_rtt_p50_ms"`
		}
		if err := json.Unmarshal(line, &s); err != nil {
			return fmt.Errorf("tcp_health row %s: %w", line, err)
		}
		rtt := -1.0
		if s.RTTp50 != nil {
			rtt = *s.RTTp50
		}
		sum.TCPHealth[net.JoinHostPort(s.Service, strconv.Itoa(int(s.Port)))+" "+s.Direction] = TCPService{
			Flows: s.Flows, Handshakes: s.Handshakes, Retransmissions: s.Retransmissions, OutOfOrder: s.OutOfOrder, HandshakeRTTp50ms: rtt}
	}
	return nil
}

// printTCPHealth prints the services clients completed handshakes with, one a line.
func (r *runner) printTCPHealth(sum *Summary) {
	fmt.Fprintf(r.cfg.Out, "\n== TCP health of the services clients connected to (packetlake query tcp_health)\n")
	for _, l := range strings.Split(formatTCPHealth(sum.TCPHealth), "; ") {
		fmt.Fprintf(r.cfg.Out, "  %s\n", l)
	}
}

// formatTCPHealth prints the services clients completed handshakes with ("to" rows; the
// scan's probes of closed ports are one-SYN "services" of their own and left out), as
// "198.18.0.1:443 12 flows, 12 handshakes (p50 0.081 ms), 0 retransmissions".
func formatTCPHealth(m map[string]TCPService) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		svc, ok := strings.CutSuffix(k, " to")
		s := m[k]
		if !ok || s.Handshakes == 0 {
			continue
		}
		rtt := ""
		if s.HandshakeRTTp50ms >= 0 {
			rtt = fmt.Sprintf(" (p50 %.3f ms)", s.HandshakeRTTp50ms)
		}
		parts = append(parts, fmt.Sprintf("%s %d flows, %d handshakes%s, %d retransmissions, %d out of order",
			svc, s.Flows, s.Handshakes, rtt, s.Retransmissions, s.OutOfOrder))
	}
	if len(parts) == 0 {
		return "no TCP service seen"
	}
	return strings.Join(parts, "; ")
}
