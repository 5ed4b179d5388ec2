package demo

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/netns"
	"github.com/packetlake/packetlake/query"
)

// ClosedPort is the server's UDP port nobody listens on: one datagram a round to it makes the
// server's kernel drop a packet for NO_SOCKET, the cheapest drop reason to induce.
const ClosedPort = 9

// closedPortProbe sends the datagrams and keeps the server kernel's own count of them.
type closedPortProbe struct {
	sent          atomic.Uint64
	noPortsBefore uint64
}

// send writes one datagram from the client namespace to the server's closed port.
func (c *closedPortProbe) send(l *lab) error {
	err := netns.Do(l.cliNS, func() error {
		conn, err := net.Dial("udp4", net.JoinHostPort(l.srv4.String(), strconv.Itoa(ClosedPort)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write([]byte("packetlake demo: nobody listens here"))
		return err
	})
	if err == nil {
		c.sent.Add(1)
	}
	return err
}

// udpNoPorts reads the namespace's Udp NoPorts counter (/proc/net/snmp): the kernel's count of
// datagrams that found no socket, the oracle the demo's NO_SOCKET line is checked against.
func udpNoPorts(ns string) (uint64, error) {
	var n uint64
	err := netns.Do(ns, func() error {
		// thread-self: /proc/self/net would show the namespace of the process's main thread.
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		var head []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 || f[0] != "Udp:" {
				continue
			}
			if head == nil {
				head = f
				continue
			}
			for i := range head {
				if head[i] == "NoPorts" && i < len(f) {
					n, err = strconv.ParseUint(f[i], 10, 64)
					return err
				}
			}
		}
		return fmt.Errorf("no Udp NoPorts in /proc/net/snmp")
	})
	return n, err
}

// keptRegistry keeps the collector's metrics readable after its Stop unregisters them: the
// demo reads the drop exporter's final count once the collector has stopped.
type keptRegistry struct{ *prometheus.Registry }

func (keptRegistry) Unregister(prometheus.Collector) bool { return true }

// collectorRegistry is the collector's metrics registry: the demo reads the drop exporter's
// count from it.
func (r *runner) collectorRegistry() prometheus.Registerer {
	r.reg = prometheus.NewRegistry()
	return keptRegistry{r.reg}
}

// dropsExported is how many dropped packets the collector exported and Kafka acknowledged.
func dropsExported(reg *prometheus.Registry) (uint64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "packetlake_collector_kernel_drops_exported_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return uint64(n), nil
}

// waitDrops waits until the drops table holds every dropped packet the collector exported.
func (r *runner) waitDrops(ctx context.Context, want uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := r.lines(ctx, "SELECT sum(packets) FROM drops WHERE collector_id = $ID")
		if err == nil && len(l) == 1 && l[0] == strconv.FormatUint(want, 10) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v the drops table holds %q dropped packets of this run, the collector exported %d (last error: %v)", timeout, l, want, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// fillDrops reads this run's kernel drops (packets packetlake saw, then the kernel dropped) into
// the summary.
func (r *runner) fillDrops(ctx context.Context, sum *Summary) error {
	sum.KernelDrops = map[string]uint64{}
	l, err := r.lines(ctx, "SELECT reason, sum(packets) FROM drops WHERE collector_id = $ID AND observed = 1 GROUP BY reason")
	if err != nil {
		return err
	}
	for _, row := range l {
		reason, n, _ := strings.Cut(row, "\t")
		if sum.KernelDrops[reason], err = strconv.ParseUint(n, 10, 64); err != nil {
			return err
		}
	}
	one := func(sql string) (uint64, error) {
		l, err := r.lines(ctx, sql)
		if err != nil || len(l) != 1 {
			return 0, fmt.Errorf("%s: %v %q", sql, err, l)
		}
		return strconv.ParseUint(l[0], 10, 64)
	}
	if sum.ClosedPortDrops, err = one(fmt.Sprintf(`SELECT sum(packets) FROM drops WHERE collector_id = $ID AND observed = 1
		AND reason = 'NO_SOCKET' AND ip_proto = 17 AND dst_port = %d`, ClosedPort)); err != nil {
		return err
	}
	if sum.ScanNoSocketDrops, err = one(`SELECT sum(packets) FROM drops WHERE collector_id = $ID AND observed = 1
		AND reason = 'NO_SOCKET' AND ip_proto = 6 AND src_addr = toIPv6('::ffff:` + r.lab.cli4.String() + `')`); err != nil {
		return err
	}
	return nil
}

// printDrops prints the kernel drops by reason and flow (the drops table).
func (r *runner) printDrops(ctx context.Context, sum *Summary) error {
	fmt.Fprintf(r.cfg.Out, "\n== Kernel drops: packets packetlake saw, then the kernel dropped (table drops; packetlake query loss_budget)\n")
	p := query.Params{Since: sum.Start, Until: time.Now().Add(time.Second), Limit: 10}
	return query.RunSQL(ctx, r.queryConfig(), strings.ReplaceAll(`SELECT reason,
    multiIf(ip_proto = 6, 'TCP', ip_proto = 17, 'UDP', ip_proto = 1, 'ICMP', ip_proto = 58, 'ICMPv6', toString(ip_proto)) AS proto,
    sum(packets) AS packets, sum(bytes) AS bytes, uniqExact(src_addr, dst_addr, src_port, dst_port) AS flows,
    uniqExact(dst_port) AS dst_ports, arraySlice(arraySort(groupUniqArray(dst_port)), 1, 5) AS lowest_dst_ports
FROM drops WHERE collector_id = $ID AND observed = 1
GROUP BY reason, ip_proto ORDER BY packets DESC LIMIT {limit:UInt32}`, "$ID", strconv.FormatUint(r.col.ID(), 10)), p, query.Formats["table"], r.cfg.Out)
}

// formatDrops prints the reasons as "NO_SOCKET 1012, NETFILTER_DROP 3".
func formatDrops(m map[string]uint64) string {
	reasons := slices.Collect(maps.Keys(m))
	slices.SortFunc(reasons, func(a, b string) int { // most first, then by name
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	var parts []string
	for _, k := range reasons {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
