package collector

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/packetlake/packetlake/internal/pcapfile"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
	"github.com/packetlake/packetlake/record"
)

var pcapDir = testpcaps.Dir()

// TestMain refuses to run without what the tests need: they load the real BPF program.
func TestMain(m *testing.M) {
	if err := bpf.CheckCaps(); err != nil {
		fmt.Fprintf(os.Stderr, "collector tests load the BPF program into the kernel: %v\n", err)
		os.Exit(1)
	}
	if _, err := os.Stat(pcapDir); err != nil {
		fmt.Fprintf(os.Stderr, "collector tests replay the shared captures: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	testinfra.RemoveBinary() // cmd_test.go's binary
	os.Exit(code)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// startKafka runs kfake (kafkalocal's embedded broker) with the two topics.
func startKafka(t testing.TB) *kafkalocal.Embedded {
	t.Helper()
	k, err := kafkalocal.StartEmbedded(kafkalocal.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(k.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, topic := range []string{"packets", "packetlake-stats", "packetlake-flows"} {
		if err := kafkalocal.CreateTopic(ctx, k.Addr(), topic, 1); err != nil {
			t.Fatalf("create topic: %v", err)
		}
	}
	return k
}

// testConfig is DefaultConfig pointed at a broker, with small frames so tests see several.
func testConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Iface = "lo" // exists everywhere; live tests do not attach (noAttach)
	cfg.Host = "test-host"
	cfg.Kafka.Brokers = []string{addr}
	cfg.RingBytes = 4 << 20
	cfg.StatsInterval = time.Hour
	cfg.FlushTimeout = 5 * time.Second
	return cfg
}

// startLive starts a live-mode collector that attaches nothing: the test feeds it with
// BPF_PROG_TEST_RUN, the same program and ring as on an interface.
func startLive(t testing.TB, cfg Config) *Collector {
	t.Helper()
	return startLiveWith(t, cfg, testLogger(t), nil)
}

// startLiveWith is startLive with the logger and registry a test reads.
func startLiveWith(t testing.TB, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Collector {
	t.Helper()
	c, err := New(cfg, Dependencies{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.noAttach = true
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// capturePackets reads the raw frames of a shared capture.
func capturePackets(t testing.TB, name string) ([][]byte, []time.Time) {
	t.Helper()
	f, err := os.Open(pcapDir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, _, err := pcapfile.Open(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	var ts []time.Time
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			return pkts, ts
		}
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, append([]byte(nil), data...))
		ts = append(ts, ci.Timestamp)
	}
}

// inject runs n packets (cycling through pkts) through the collector's program.
func inject(t testing.TB, c *Collector, pkts [][]byte, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.objs.TestRun(pkts[i%len(pkts)]); err != nil {
			t.Fatalf("TestRun packet %d: %v", i, err)
		}
	}
}

// consumer reads a topic from its start.
type consumer struct {
	cl   *kgo.Client
	recs []*kgo.Record
}

func newConsumer(t testing.TB, addr, topic string) *consumer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &consumer{cl: cl}
}

// until polls until done(all records so far) or the timeout; it returns what it has.
func (c *consumer) until(timeout time.Duration, done func([]*kgo.Record) bool) []*kgo.Record {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !done(c.recs) && ctx.Err() == nil {
		fs := c.cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { c.recs = append(c.recs, r) })
	}
	return c.recs
}

// frame is one consumed frame, checked and decoded.
type frame struct {
	hdr      record.FrameHeader
	size     int
	firstLen int // bytes of the first sample
	packets  []record.Packet
}

func decodeFrames(t testing.TB, recs []*kgo.Record) []frame {
	t.Helper()
	var out []frame
	for _, r := range recs {
		h, samples, err := record.ParseFrame(r.Value)
		if err != nil {
			t.Fatalf("frame at offset %d: %v", r.Offset, err)
		}
		f := frame{hdr: h, size: len(r.Value)}
		f.firstLen, _ = record.SampleLen(samples)
		var p record.Packet
		if err := record.Frame(h, samples, &p, func(p *record.Packet) error {
			f.packets = append(f.packets, *p)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

func countRecords(recs []*kgo.Record) int {
	n := 0
	for _, r := range recs {
		if h, _, err := record.ParseFrame(r.Value); err == nil {
			n += h.Count
		}
	}
	return n
}

// deadPort is a loopback port nothing listens on: a broker that is down.
func deadPort(t testing.TB) string { return testinfra.FreeAddr(t) }

// waitFor polls cond until true or timeout.
func waitFor(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
