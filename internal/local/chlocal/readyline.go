package chlocal

import (
	"fmt"
	"strings"
)

// readyPrefix starts the single stdout line with which `packetlake clickhouse-local` tells a
// parent (Spawn, scripts) that both ports answer queries. Both sides use these helpers so the
// format cannot drift.
const readyPrefix = "clickhouse-local ready "

// ReadyLine formats the ready line, e.g.
// "clickhouse-local ready tcp=127.0.0.1:9000 http=127.0.0.1:8123 data=/var/lib/pl".
func ReadyLine(tcpAddr, httpAddr, dataDir string) string {
	return fmt.Sprintf("%stcp=%s http=%s data=%s", readyPrefix, tcpAddr, httpAddr, dataDir)
}

// parseReadyLine is ReadyLine's inverse; ok is false for any other line. data= comes last so
// a data dir containing spaces survives.
func parseReadyLine(line string) (tcpAddr, httpAddr, dataDir string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimRight(line, "\r\n"), readyPrefix)
	if !found {
		return "", "", "", false
	}
	if _, err := fmt.Sscanf(rest, "tcp=%s http=%s", &tcpAddr, &httpAddr); err != nil {
		return "", "", "", false
	}
	_, dataDir, found = strings.Cut(rest, " data=")
	return tcpAddr, httpAddr, dataDir, found && tcpAddr != "" && httpAddr != ""
}
