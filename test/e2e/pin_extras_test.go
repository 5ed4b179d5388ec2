package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/record"
)

// TestCollectorRestartKeepsDropsExact: the drop-reason program is pinned with the run, so a
// collector killed with SIGKILL loses no drop and a restarted one sends none twice. Real kernel
// (XDP on a veth in test-made namespaces), the test's own Apache Kafka, the ingester and
// ClickHouse, the collector as a process of the packetlake binary. The kill lands while an
// export is unacknowledged (the broker paused: the export's messages may reach Kafka after the
// kill, or not), drops go on while no collector runs, the next collector adopts the program and
// sends the unacknowledged export again with its identity, and `collect --detach` ends it all.
// The drops table must hold, per reason and flow, exactly the packets and bytes sent, with the
// kernel's own counters (/proc/net/snmp NoPorts, InCsumErrors) as the independent oracle, all
// under one run.
func TestCollectorRestartKeepsDropsExact(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	k := startOwnKafka(t, ctx)
	topics := make([]string, 4)
	for i, name := range []string{"packets", "stats", "flows", "drops"} {
		topics[i] = "pinx-" + name
		if err := kafkalocal.CreateTopic(ctx, k.Addr(), topics[i], 1); err != nil {
			t.Fatal(err)
		}
	}
	v := nettest.NewVethPair(t)
	nettest.NeighboursBothWays(t, v)
	pinDir := testPinDir(t)
	args := []string{"collect", "--netns", v.NS, "--iface", v.Name, "--brokers", k.Addr(), "--host", "pinx",
		"--topic", topics[0], "--stats-topic", topics[1], "--flows-topic", topics[2], "--drops-topic", topics[3],
		"--pin-dir", pinDir, "--ring-bytes", "8M", "--flow-interval", "300ms", "--stats-interval", "500ms", "--log-format", "json"}
	snmpBefore := snmpUDPIn(t, v.NS)
	const frame = 14 + 20 + 8

	m1 := freeAddr(t)
	first := startCollect(t, "first", append(args, "--metrics-addr", m1)...)
	run := first.waitLog(t, ctx, "kernel drop reasons on")["run"]
	nettest.SendUDP(t, v, 42000, 7000, 10, 100, false) // nothing listens: NO_SOCKET
	waitScrape(t, ctx, m1, "the first drops acknowledged", `packetlake_collector_kernel_drops_exported_total`, `observed="1"`, 10)

	// Kill point: an export is cut and unacknowledged (the broker paused past its wait).
	pid := k.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT broker %d: %v", pid, err)
			}
		}
	}
	t.Cleanup(resume)
	nettest.SendUDP(t, v, 42000, 7000, 20, 100, false)
	waitScrape(t, ctx, m1, "an export unacknowledged", `packetlake_collector_drop_export_errors_total`, "", 1)
	nettest.SendUDP(t, v, 42001, 7001, 15, 200, false) // counted, not yet exported
	first.kill(t)
	if !pinsPresent(t, pinDir) {
		t.Fatal("after SIGKILL: no pins")
	}
	// The gap: drops while no collector runs.
	nettest.SendUDP(t, v, 42002, 7002, 25, 300, true) // wrong UDP checksum: UDP_CSUM
	resume()

	m2 := freeAddr(t)
	second := startCollect(t, "second", append(args, "--metrics-addr", m2)...)
	second.waitLog(t, ctx, "adopted the pinned drop-reason program: its counts go on")
	resent := second.waitLog(t, ctx, "drops: sending again the export the last process left unacknowledged")
	if got := second.waitLog(t, ctx, "kernel drop reasons on")["run"]; fmt.Sprint(got) != fmt.Sprint(run) {
		t.Errorf("the restarted collector's drop run is %v, want the first's %v", got, run)
	}
	nettest.SendUDP(t, v, 42000, 7000, 5, 100, false)
	// What the second process accounts: the resent export (20), then 15 + 25 + 5.
	waitScrape(t, ctx, m2, "every drop acknowledged after the restart", `packetlake_collector_kernel_drops_exported_total`, `observed="1"`, 65)
	second.term(t)
	if !pinsPresent(t, pinDir) {
		t.Fatal("after SIGTERM: no pins (--on-stop keep)")
	}
	det := startCollect(t, "detach", append(args, "--metrics-addr", "", "--detach")...)
	if err := det.wait(60 * time.Second); err != nil {
		t.Fatalf("collect --detach: %v\n%s", err, det.logText())
	}
	if _, err := os.Stat(pinDir); !os.IsNotExist(err) {
		ents, _ := os.ReadDir(pinDir)
		t.Errorf("pin directory %s left after --detach (%v): %v", pinDir, err, ents)
	}

	db := "pinx_" + fmt.Sprint(time.Now().UnixNano())
	group := "pinx-" + db
	stopIngest := startIngestAt(t, ctx, k.Addr(), topics[0], topics[1], topics[2], group, db, "--drops-topic", topics[3])
	if err := testinfra.WaitCommitted(ctx, k.Addr(), group, topics[3]); err != nil {
		t.Fatal(err)
	}
	stopIngest()
	ch := env.CH(t)
	rows, err := ch.Query(ctx, "SELECT reason, dst_port, sum(packets), sum(bytes), count() - uniqExact(run, export_seq, chunk, reason, src_port, dst_port) "+
		"FROM "+db+".drops WHERE observed = 1 GROUP BY reason, dst_port ORDER BY dst_port")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var reason string
		var port uint16
		var pk, by uint64
		var twice int64
		if err := rows.Scan(&reason, &port, &pk, &by, &twice); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("%s %d", reason, port)] = fmt.Sprintf("%d pkts %d B, %d rows twice", pk, by, twice)
	}
	rows.Close()
	want := map[string]string{
		"NO_SOCKET 7000": fmt.Sprintf("35 pkts %d B, 0 rows twice", 35*(frame+100)),
		"NO_SOCKET 7001": fmt.Sprintf("15 pkts %d B, 0 rows twice", 15*(frame+200)),
		"UDP_CSUM 7002":  fmt.Sprintf("25 pkts %d B, 0 rows twice", 25*(frame+300)),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("drops table: %v, want %v", got, want)
	}
	// The kernel's own counters: every datagram sent was refused.
	snmp := snmpUDPIn(t, v.NS)
	if np, ce := snmp["NoPorts"]-snmpBefore["NoPorts"], snmp["InCsumErrors"]-snmpBefore["InCsumErrors"]; np != 50 || ce != 25 {
		t.Errorf("/proc/net/snmp: NoPorts +%d, InCsumErrors +%d; want 50, 25", np, ce)
	}
	var runs uint64
	if err := ch.QueryRow(ctx, "SELECT uniqExact(run) FROM "+db+".drops").Scan(&runs); err != nil || runs != 1 {
		t.Errorf("drops rows carry %d runs (%v), want 1: the restarted collector goes on with the pinned counters", runs, err)
	}
	t.Logf("drops: %v; export resent after the restart: seq %v; message identities in Kafka more than once: %d (stored once)",
		got, resent["export_seq"], identitiesTwice(t, ctx, k.Addr(), topics[3]))
}

// identitiesTwice counts the drop message identities that the topic holds more than once: an
// export the killed process had produced and the next one sent again.
func identitiesTwice(t *testing.T, ctx context.Context, addr, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	seen := map[string]int{}
	for n := int64(0); n < end && ctx.Err() == nil; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			var m record.DropMessage
			if json.Unmarshal(r.Value, &m) == nil {
				seen[fmt.Sprint(m.Run, m.ExportSeq, m.Chunk)]++
			}
		})
	}
	twice := 0
	for _, c := range seen {
		if c > 1 {
			twice++
		}
	}
	return twice
}

// waitScrape waits until the sum of metric name's series (those containing label, if set) on
// the collector's /metrics reaches at least n.
func waitScrape(t *testing.T, ctx context.Context, addr, what, name, label string, n float64) {
	t.Helper()
	var sum float64
	for ctx.Err() == nil {
		sum = 0
		for _, l := range strings.Split(scrapeQuiet(addr), "\n") {
			if !strings.HasPrefix(l, name) || (label != "" && !strings.Contains(l, label)) {
				continue
			}
			if f := strings.Fields(l); len(f) == 2 {
				v, _ := strconv.ParseFloat(f[1], 64)
				sum += v
			}
		}
		if sum >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s is %v, never reached %v", what, name, sum, n)
}

// scrapeQuiet is scrape that returns "" while the collector does not serve yet.
func scrapeQuiet(addr string) string {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// snmpUDPIn reads the Udp counters of /proc/net/snmp in namespace ns: the kernel's own count of
// what its UDP layer refused.
func snmpUDPIn(t *testing.T, ns string) map[string]uint64 {
	t.Helper()
	out := nettest.MustExec(t, ns, "cat", "/proc/net/snmp")
	var lines [][]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "Udp:" {
			lines = append(lines, f[1:])
		}
	}
	if len(lines) != 2 || len(lines[0]) != len(lines[1]) {
		t.Fatalf("no Udp counters in /proc/net/snmp of %s:\n%s", ns, out)
	}
	m := map[string]uint64{}
	for i, k := range lines[0] {
		m[k], _ = strconv.ParseUint(lines[1][i], 10, 64)
	}
	return m
}

// TestCollectorRestartKeepsReceivers: the receiver tracer is pinned with the run, so a server
// that read before a collector's SIGKILL is still named on its flow after the restart without
// reading again, and one that read only while no collector ran is named too (the pinned tracer
// kept recording). Real kernel, Apache Kafka, ClickHouse, the collector and ingester as processes.
// Without the pin the restarted collector's tracer starts empty and both flows name nobody.
func TestCollectorRestartKeepsReceivers(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	l := newPinLab(t, ctx, "recvpin", "--receivers", "--flow-interval", "1h", "--metrics-addr", "")
	v := l.v
	nettest.NeighboursBothWays(t, v)
	listen := func(port uint16) *net.UDPConn {
		var c *net.UDPConn
		if err := nettest.Do(v.NS, func() (err error) {
			c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.Addr, port)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	readN := func(c *net.UDPConn, n int) {
		t.Helper()
		buf := make([]byte, 2048)
		for range n {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(buf); err != nil {
				t.Fatalf("server read: %v", err)
			}
		}
	}
	before, gap := listen(7301), listen(7302)

	first := startCollect(t, "first", l.args...)
	first.waitLog(t, ctx, "collector started")
	nettest.SendUDP(t, v, 43001, 7301, 3, 50, false)
	readN(before, 3) // kill point: the server's reads returned, so the tracer has run for them
	first.kill(t)
	nettest.SendUDP(t, v, 43001, 7301, 4, 50, false) // sits unread in the socket
	nettest.SendUDP(t, v, 43002, 7302, 2, 50, false)
	readN(gap, 2) // read while no collector runs

	second := startCollect(t, "second", l.args...)
	second.waitLog(t, ctx, "adopted the pinned receiver tracer: sockets read before the restart are still named")
	second.waitLog(t, ctx, "collector started")
	second.term(t) // exports the flows, with their receivers
	det := startCollect(t, "detach", append(l.args, "--detach")...)
	if err := det.wait(60 * time.Second); err != nil {
		t.Fatalf("collect --detach: %v\n%s", err, det.logText())
	}
	if _, err := os.Stat(l.pinDir); !os.IsNotExist(err) {
		ents, _ := os.ReadDir(l.pinDir)
		t.Errorf("pin directory %s left after --detach (%v): %v", l.pinDir, err, ents)
	}

	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16]string{
		7301: fmt.Sprintf("7 pkts pid %d comm %s", os.Getpid(), strings.TrimSpace(string(comm))),
		7302: fmt.Sprintf("2 pkts pid %d comm %s", os.Getpid(), strings.TrimSpace(string(comm))),
	}
	ch := env.CH(t)
	var got map[uint16]string
	for deadline := time.Now().Add(30 * time.Second); ctx.Err() == nil && time.Now().Before(deadline); {
		got = map[uint16]string{}
		rows, err := ch.Query(ctx, fmt.Sprintf("SELECT dst_port, sum(packets), groupUniqArray(recv_pid), groupUniqArray(recv_comm) FROM %s.flows "+
			"WHERE host = '%s' AND ip_proto = 17 AND dst_port IN (7301, 7302) GROUP BY dst_port", l.db, l.host))
		if err == nil {
			for rows.Next() {
				var port uint16
				var pk uint64
				var pids []uint32
				var comms []string
				if rows.Scan(&port, &pk, &pids, &comms) == nil {
					got[port] = fmt.Sprintf("%d pkts pid %s comm %s", pk, strings.Trim(fmt.Sprint(pids), "[]"), strings.Join(comms, ","))
				}
			}
			rows.Close()
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("flows after the restart: %v, want %v", got, want)
	}
	t.Logf("flows: %v", got)
}

// TestCollectorReplacesPinnedDropsOfOtherSettings: a collector started with another
// --drop-entries than the pinned drop-reason program's does not adopt it: it removes it (the old
// program is freed), logs and counts the replacement, and loads and pins its own under a new run;
// --on-stop detach then leaves no pin.
func TestCollectorReplacesPinnedDropsOfOtherSettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l := newPinLab(t, ctx, "dropsrepl", "--drops-topic", env.Topic(t, 1))
	old := startCollect(t, "old", append(l.args, "--metrics-addr", "")...)
	oldRun := old.waitLog(t, ctx, "kernel drop reasons on")["run"]
	old.kill(t)
	oldProg := pinnedProgID(t, l.pinDir, "drops_prog_pl_kfree_skb")

	metrics := freeAddr(t)
	repl := startCollect(t, "replacing", append(l.args, "--drop-entries", "1024", "--on-stop", "detach", "--metrics-addr", metrics)...)
	replaced := repl.waitLog(t, ctx, "replacing the pinned drop-reason program: its drops since its last acknowledged export are not exported")
	newRun := repl.waitLog(t, ctx, "kernel drop reasons on")["run"]
	if replaced["reason"] != "program_or_settings" || fmt.Sprint(newRun) == fmt.Sprint(oldRun) {
		t.Errorf("replacement: reason %v, run %v after %v; want program_or_settings and a new run", replaced["reason"], newRun, oldRun)
	}
	if p := pinnedProgID(t, l.pinDir, "drops_prog_pl_kfree_skb"); p == oldProg {
		t.Errorf("the pinned drop program is still the old one (%d)", p)
	}
	if out, err := exec.Command("bpftool", "prog", "show", "id", fmt.Sprint(oldProg)).CombinedOutput(); err == nil {
		t.Errorf("the replaced drop program %d still exists:\n%s", oldProg, out)
	}
	if m := scrapeQuiet(metrics); !strings.Contains(m, `reason="drops_program_or_settings"} 1`) {
		t.Errorf("/metrics has no drops replacement counted:\n%s", grepLines(m, "pin_replacements"))
	}
	repl.term(t)
	if _, err := os.Stat(l.pinDir); !os.IsNotExist(err) {
		ents, _ := os.ReadDir(l.pinDir)
		t.Errorf("pin directory %s left after SIGTERM with --on-stop detach (%v): %v", l.pinDir, err, ents)
	}
}

// pinnedProgID is the id of the program pinned at dir/name.
func pinnedProgID(t *testing.T, dir, name string) ebpf.ProgramID {
	t.Helper()
	p, err := ebpf.LoadPinnedProgram(filepath.Join(dir, name), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return id
}
