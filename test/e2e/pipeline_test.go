package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// The whole pipeline with the real binaries: `packetlake collect --pcap` of every shared capture
// into the real Kafka broker, `packetlake ingest` into the real ClickHouse, and every stored row
// equal, column for column, to what `packetlake decode` prints for the same packet.
func TestPipelineStoresWhatDecodePrints(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	topic, stats, flows := env.Topic(t, 3), env.Topic(t, 1), env.Topic(t, 1)
	db := strings.ReplaceAll(env.Topic(t, 1), "-", "_") // a fresh name; the ingester creates it

	want := map[string][][]byte{} // iface (capture base name) -> decode's lines, in packet order
	total := 0
	for _, name := range sharedCaptures(t) {
		path := filepath.Join(sharedPcaps, name)
		out, stderr, err := runDecode(ctx, path)
		if err != nil {
			t.Fatalf("decode %s: %v\n%s", name, err, stderr)
		}
		lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
		want[filepath.Base(path)] = lines
		total += len(lines)
		cmd := exec.CommandContext(ctx, env.Bin, "collect", "--pcap", path, "--brokers", env.Kafka.Addr(),
			"--topic", topic, "--stats-topic", stats, "--flows-topic", flows, "--metrics-addr", "", "--host", "pipeline-test")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("collect --pcap %s: %v\n%s", name, err, b)
		}
	}
	if total < 600 {
		t.Fatalf("only %d packets decoded from the shared captures", total)
	}

	stop := startIngest(t, ctx, topic, stats, flows, "pipeline-"+db, db)
	defer stop()
	waitRows(t, ctx, db, uint64(total))

	ch := env.CH(t)
	compared := 0
	for iface, lines := range want {
		rows := storedPackets(t, ctx, db, "iface = '"+iface+"'")
		if len(rows) != len(lines) {
			t.Errorf("%s: %d rows stored, decode printed %d", iface, len(rows), len(lines))
			continue
		}
		for i := range rows {
			got := record.AppendJSON(nil, &rows[i])
			if diff := jsonDiff(lines[i], got, "host", "collector_id", "seq"); diff != "" {
				t.Errorf("%s packet %d: stored row differs from decode: %s", iface, i+1, diff)
			}
			compared++
		}
	}
	var dups int64
	if err := ch.QueryRow(ctx, "SELECT count() - uniqExact(host, collector_id, seq) FROM "+db+".packets").Scan(&dups); err != nil || dups != 0 {
		t.Errorf("duplicate (host, collector_id, seq): %d (err %v)", dups, err)
	}
	var statsRows uint64
	if err := ch.QueryRow(ctx, "SELECT count() FROM "+db+".collector_stats").Scan(&statsRows); err != nil || statsRows == 0 {
		t.Errorf("collector_stats rows: %d (err %v); every collect run publishes a final stats message", statsRows, err)
	}
	// The kernel's flow counters saw every packet too: summed over all flows they equal the
	// packets stored (each capture replay is one collector run; its final export is flushed).
	var flowPackets uint64
	for ctx.Err() == nil {
		if err := ch.QueryRow(ctx, "SELECT sum(packets) FROM "+db+".flows").Scan(&flowPackets); err == nil && flowPackets >= uint64(total) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if flowPackets != uint64(total) {
		t.Errorf("flows count %d packets, %d were stored", flowPackets, total)
	}
	t.Logf("%d packets from %d captures: every stored row equals decode's output", compared, len(want))
}

// startIngest runs `packetlake ingest` as a child until the test ends.
func startIngest(t *testing.T, ctx context.Context, topic, stats, flows, group, db string) (stop func()) {
	t.Helper()
	return startIngestAt(t, ctx, env.Kafka.Addr(), topic, stats, flows, group, db)
}

// startIngestAt is startIngest against the broker at brokers, with extra flags.
func startIngestAt(t *testing.T, ctx context.Context, brokers, topic, stats, flows, group, db string, extra ...string) (stop func()) {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "ingest.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"ingest", "--brokers", brokers, "--group", group,
		"--topic", topic, "--stats-topic", stats, "--flows-topic", flows, "--clickhouse", env.ClickHouse.TCPAddr(),
		"--clickhouse-http", env.ClickHouse.HTTPAddr(), "--database", db, "--metrics-addr", "",
		"--flush-age", "200ms"}
	cmd := exec.Command(env.Bin, append(args, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := childproc.Start(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		select {
		case <-done: // a member that died mid-test would hide behind the others taking over
			t.Errorf("packetlake ingest (pid %d) exited before the test stopped it: %v", cmd.Process.Pid, cmd.ProcessState)
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("ingest log:\n%s", tailString(string(b), 4000))
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitRows waits until db.packets holds want rows, failing on more or on a timeout.
func waitRows(t *testing.T, ctx context.Context, db string, want uint64) {
	t.Helper()
	ch := env.CH(t)
	var n uint64
	for ctx.Err() == nil {
		err := ch.QueryRow(ctx, "SELECT count() FROM "+db+".packets").Scan(&n)
		if err == nil && n >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n != want {
		t.Fatalf("%s.packets holds %d rows, want %d", db, n, want)
	}
}

// storedPackets reads rows back into record.Packet, column by column in schema order.
func storedPackets(t *testing.T, ctx context.Context, db, where string) []record.Packet {
	t.Helper()
	names := make([]string, len(schema.Columns))
	for i, c := range schema.Columns {
		names[i] = c.Name
	}
	rows, err := env.CH(t).Query(ctx, fmt.Sprintf("SELECT %s FROM %s.packets WHERE %s ORDER BY collector_id, seq",
		strings.Join(names, ", "), db, where))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []record.Packet
	for rows.Next() {
		var p record.Packet
		v := reflect.ValueOf(&p).Elem()
		var ts time.Time
		var src, dst netip.Addr
		dest := make([]any, v.NumField())
		for i := range dest {
			switch names[i] {
			case "ts":
				dest[i] = &ts
			case "src_addr":
				dest[i] = &src
			case "dst_addr":
				dest[i] = &dst
			default:
				dest[i] = v.Field(i).Addr().Interface()
			}
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		p.TS, p.SrcAddr, p.DstAddr = ts.UnixNano(), src.As16(), dst.As16()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// jsonDiff compares two JSON objects key by key, ignoring some keys; "" when equal.
func jsonDiff(a, b []byte, ignore ...string) string {
	var ma, mb map[string]any
	if err := json.Unmarshal(a, &ma); err != nil {
		return "first: " + err.Error()
	}
	if err := json.Unmarshal(b, &mb); err != nil {
		return "second: " + err.Error()
	}
	for _, k := range ignore {
		delete(ma, k)
		delete(mb, k)
	}
	var diffs []string
	for k, va := range ma {
		if vb, ok := mb[k]; !ok || !reflect.DeepEqual(va, vb) {
			diffs = append(diffs, fmt.Sprintf("%s: decode %v, stored %v", k, va, mb[k]))
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			diffs = append(diffs, k+": only stored")
		}
	}
	return strings.Join(diffs, "; ")
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
