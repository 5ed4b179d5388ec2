package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/childproc"
)

// TestKafkaLocalToStoredRows is a new user's first hour with packetlake's own commands only:
// `kafka-local` (which creates the topics), `topics check`, `collect --pcap`, `ingest`, and
// `query` printing the capture's IPv4 talker as a dotted quad.
func TestKafkaLocalToStoredRows(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w := &readyWriter{ready: "kafka-local ready", seen: make(chan struct{})}
	kl := exec.Command(env.Bin, "kafka-local", "--data", t.TempDir(), "--port", "0")
	kl.Stdout, kl.Stderr = w, w
	if err := childproc.Start(kl); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- kl.Wait() }()
	t.Cleanup(func() {
		kl.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	select {
	case <-w.seen:
	case err := <-exited:
		t.Fatalf("kafka-local exited: %v\n%s", err, w.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("kafka-local not ready:\n%s", w.output())
	}
	_, rest, _ := strings.Cut(w.output(), "kafka-local ready addr=")
	addr, _, _ := strings.Cut(rest, " ")

	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, env.Bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("packetlake %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("topics", "check", "--brokers", addr)
	for _, topic := range []string{"packets:", "packetlake-stats:", "packetlake-flows:"} {
		if !strings.Contains(out, topic) {
			t.Errorf("topics check lacks %s:\n%s", topic, out)
		}
	}
	// Default topic names from here on: nothing but --brokers, as the README says.
	capture := filepath.Join(sharedPcaps, "tcpdump", "ipv4_tcp_http_xml.pcap")
	run("collect", "--pcap", capture, "--brokers", addr, "--metrics-addr", "")
	db := env.Database(t)
	ingestUntilStored(t, ctx, capture, db, nil, "--brokers", addr)

	js := run("query", "top_talkers", "--clickhouse-http", env.ClickHouse.HTTPAddr(), "--database", db,
		"--from", "1970-01-01T00:00:00Z", "--format", "json")
	var first struct{ Source string }
	if err := json.Unmarshal([]byte(strings.SplitN(js, "\n", 2)[0]), &first); err != nil || strings.Count(first.Source, ".") != 3 {
		t.Errorf("query top_talkers --format json: first source %q (err %v), want a dotted quad:\n%s", first.Source, err, js)
	}
	table := run("query", "top_conversations", "--clickhouse-http", env.ClickHouse.HTTPAddr(), "--database", db,
		"--from", "1970-01-01T00:00:00Z")
	if strings.Contains(table+js, "::ffff:") || !strings.Contains(table, first.Source) {
		t.Errorf("query output prints IPv4-mapped addresses or lacks %s:\n%s", first.Source, table)
	}
}

// TestTopicsCreateAndCheckApache: `packetlake topics create` against Apache Kafka makes the
// three topics with packetlake's configs, a second run leaves them alone, and `topics check`
// names what falls short.
func TestTopicsCreateAndCheckApache(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	base := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-" + time.Now().Format("150405.000")
	names := []string{base + "-packets", base + "-stats", base + "-flows", base + "-drops"}
	args := []string{"topics", "create", "--brokers", env.Kafka.Addr(), "--topic", names[0], "--stats-topic", names[1],
		"--flows-topic", names[2], "--drops-topic", names[3], "--partitions", "3", "--replication-factor", "1"}
	out, err := exec.CommandContext(ctx, env.Bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("topics create: %v\n%s", err, out)
	}
	for _, n := range names {
		if !strings.Contains(string(out), "created "+n) {
			t.Errorf("topics create did not report %s created:\n%s", n, out)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]int{names[0]: 3, names[1]: 1, names[2]: 3, names[3]: 1} {
		if got := len(details[n].Partitions); got != want {
			t.Errorf("%s: %d partitions, want %d", n, got, want)
		}
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		retention := "86400000"
		if rc.Name == names[1] {
			retention = "604800000"
		}
		if got["retention.ms"] != retention || got["compression.type"] != "producer" || got["cleanup.policy"] != "delete" {
			t.Errorf("%s: retention.ms=%s compression.type=%s cleanup.policy=%s", rc.Name, got["retention.ms"], got["compression.type"], got["cleanup.policy"])
		}
	}
	out, err = exec.CommandContext(ctx, env.Bin, args...).CombinedOutput()
	if err != nil || strings.Count(string(out), "exists ") != len(names) {
		t.Errorf("second topics create: %v, want every topic left as it is:\n%s", err, out)
	}
	check := []string{"topics", "check", "--brokers", env.Kafka.Addr(), "--topic", names[0], "--stats-topic", names[1], "--flows-topic", names[2],
		"--drops-topic", names[3]}
	if out, err := exec.CommandContext(ctx, env.Bin, check...).CombinedOutput(); err != nil {
		t.Errorf("topics check: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, env.Bin, append(check, "--partitions", "6")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "3 partitions, fewer than the 6 asked for") {
		t.Errorf("topics check --partitions 6: %v, want it to fail naming the partitions:\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, env.Bin, "topics", "check", "--brokers", env.Kafka.Addr(), "--topic", base+"-missing").CombinedOutput()
	if err == nil || !strings.Contains(string(out), base+"-missing: does not exist") {
		t.Errorf("topics check of a missing topic: %v\n%s", err, out)
	}
}

// ingestUntilStored runs `packetlake ingest` into db with the Kafka arguments given (and extra
// environment) until db holds as many packets as `decode` prints for capture, then stops it.
// Its log is printed when the test failed.
func ingestUntilStored(t *testing.T, ctx context.Context, capture, db string, environ []string, kafkaArgs ...string) {
	t.Helper()
	ing := exec.Command(env.Bin, append([]string{"ingest", "--clickhouse", env.ClickHouse.TCPAddr(),
		"--clickhouse-http", env.ClickHouse.HTTPAddr(), "--database", db, "--metrics-addr", "", "--flush-age", "200ms"},
		kafkaArgs...)...)
	ing.Env = append(os.Environ(), environ...)
	iw := &readyWriter{ready: "\x00", seen: make(chan struct{})}
	ing.Stdout, ing.Stderr = iw, iw
	if err := childproc.Start(ing); err != nil {
		t.Fatal(err)
	}
	ingDone := make(chan struct{})
	go func() { ing.Wait(); close(ingDone) }()
	defer func() {
		ing.Process.Signal(syscall.SIGTERM)
		<-ingDone
		if t.Failed() {
			t.Logf("ingest log:\n%s", iw.output())
		}
	}()
	decoded, _, err := runDecode(ctx, capture)
	if err != nil {
		t.Fatal(err)
	}
	waitRows(t, ctx, db, uint64(strings.Count(string(decoded), "\n")))
}
