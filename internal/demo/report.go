package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/query"
)

// finalReports are the named reports (query/reports) printed at the end, in this order.
var finalReports = []struct{ name, title string }{
	{"top_talkers", "Top talkers"},
	{"top_ports", "Top destination ports"},
	{"dns_names", "DNS names queried (only queries reach the server's veth; answers leave by it)"},
	{"tls_sni", "TLS server names (SNI)"},
	{"http_hosts", "HTTP hosts"},
	{"syn_without_handshake", "SYNs without a handshake (nmap's half-open scan)"},
	{"top_receivers", "Receiving processes (collect --receivers: nginx, dnsmasq; (none): nothing local read it)"},
}

// clickhouse is the demo's ClickHouse, on the demo's database.
func (r *runner) clickhouse() chconn.Config {
	return chconn.Config{Addr: r.ch.TCPAddr(), HTTPAddr: r.ch.HTTPAddr(), Database: Database}
}

func (r *runner) queryConfig() query.Config {
	return query.Config{ClickHouse: r.clickhouse()}
}

// lines runs one of the demo's own queries and returns its TSV rows. The only value put into
// the SQL is this run's collector id, a number the demo drew itself.
func (r *runner) lines(ctx context.Context, sql string) ([]string, error) {
	var b bytes.Buffer
	sql = strings.ReplaceAll(sql, "$ID", strconv.FormatUint(r.col.ID(), 10))
	if err := query.RunSQL(ctx, r.queryConfig(), sql, query.Params{}, "TabSeparated", &b); err != nil {
		return nil, err
	}
	s := strings.TrimSpace(b.String())
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// rows counts this run's rows: the data dir keeps earlier runs' packets too.
func (r *runner) rows(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := r.lines(ctx, "SELECT count() FROM packets WHERE collector_id = $ID")
	if err != nil || len(l) != 1 {
		return 0, fmt.Errorf("count rows: %v %q", err, l)
	}
	return strconv.ParseUint(l[0], 10, 64)
}

// waitRows waits until ClickHouse holds every record Kafka acknowledged, or timeout passes.
func (r *runner) waitRows(ctx context.Context, want uint64, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := r.rows(ctx)
		if err == nil && n >= want {
			return n, nil
		}
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("after %v ClickHouse holds %d rows of this run, Kafka acknowledged %d (last error: %v)", timeout, n, want, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// fillSummary reads back what the test checks: the names seen and the scan's breadth.
func (r *runner) fillSummary(ctx context.Context, sum *Summary) error {
	var err error
	distinct := func(col string) []string {
		if err != nil {
			return nil
		}
		var l []string
		l, err = r.lines(ctx, "SELECT DISTINCT "+col+" FROM packets WHERE collector_id = $ID AND "+col+" != '' ORDER BY 1")
		return l
	}
	sum.DNSNames, sum.TLSSNI, sum.HTTPHosts = distinct("dns_qname"), distinct("tls_sni"), distinct("http_host")
	if err != nil {
		return err
	}
	// SYN without ACK: the scan's probes, not the replies' handshakes.
	l, err := r.lines(ctx, `SELECT if(src_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(src_addr)), IPv6NumToString(src_addr)) AS src, uniqExact(dst_port) AS ports FROM packets
		WHERE collector_id = $ID AND ip_proto = 6 AND bitAnd(tcp_flags, 0x12) = 0x02
		GROUP BY src_addr ORDER BY ports DESC LIMIT 1`)
	if err != nil {
		return err
	}
	if len(l) == 1 {
		src, ports, _ := strings.Cut(l[0], "\t")
		sum.ScanSource = src
		if sum.ScanPorts, err = strconv.ParseUint(ports, 10, 64); err != nil {
			return err
		}
	}
	sum.Anomalies, err = r.lines(ctx, fmt.Sprintf("SELECT concat(kind, ' ', subject) FROM anomalies WHERE ts >= fromUnixTimestamp64Milli(%d) ORDER BY ts", sum.Start.UnixMilli()))
	return err
}

// printAnomalies prints what the detector raised during the run.
func (r *runner) printAnomalies(ctx context.Context, since time.Time) error {
	fmt.Fprintf(r.cfg.Out, "\n== Anomalies the detector raised (table anomalies)\n")
	p := query.Params{Since: since, Until: time.Now().Add(time.Second), Limit: 20}
	return query.RunSQL(ctx, r.queryConfig(), `SELECT ts, kind, subject, round(score, 1) AS score, evidence
		FROM anomalies WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
		ORDER BY ts LIMIT {limit:UInt32}`, p, query.Formats["table"], r.cfg.Out)
}

// printReports prints the named reports over this run's time range.
func (r *runner) printReports(ctx context.Context, since time.Time) error {
	p := query.Params{Since: since, Until: time.Now().Add(time.Second), Limit: 10}
	for _, rep := range finalReports {
		fmt.Fprintf(r.cfg.Out, "\n== %s (packetlake query %s)\n", rep.title, rep.name)
		if err := query.Run(ctx, r.queryConfig(), rep.name, p, "table", r.cfg.Out); err != nil {
			return fmt.Errorf("report %s: %w", rep.name, err)
		}
	}
	return nil
}

// printHowTo says where the data is and how to look at it after the demo.
func (r *runner) printHowTo() {
	out, data := r.cfg.Out, r.cfg.DataDir
	if !r.cfg.Keep {
		fmt.Fprintf(out, "\nThe data under %s is deleted on exit (--keep=false).\n", data)
		return
	}
	bin, data := relative(r.cfg.Binary), relative(data)
	fmt.Fprintf(out, `
The data stays in %[1]s: ClickHouse's in %[1]s/clickhouse (database %[3]s), kfake's in
%[1]s/kafka, the servers' configs and logs in %[1]s/lab. A later demo adds to it. To query it,
serve it on 127.0.0.1:9000 and :8123 (until Ctrl-C):
  %[2]s clickhouse-local --data %[1]s/clickhouse
then, in another shell ('%[2]s query -h' lists the reports):
  %[2]s query --since 24h top_talkers
  curl 'http://127.0.0.1:8123/?query=SELECT+count()+FROM+%[3]s.packets'
The web console (traffic, packets, anomalies, pipeline, TCP health, drops, receivers) over the
same data, one command that starts ClickHouse on free ports itself (do not run clickhouse-local
on the same data then):
  %[2]s console --clickhouse-data %[1]s/clickhouse
and open http://127.0.0.1:8080/anomalies?from=now-24h
`, data, bin, Database)
}

// relative shortens path to one relative to the working directory when it lies below it
// (bin/packetlake, .demo), so the printed commands read as the user would type them.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}
