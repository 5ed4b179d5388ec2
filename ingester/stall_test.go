package ingester

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/logbuf"
)

// TestStallUnready: ClickHouse is down for longer than the stall timeout while frames wait:
// `packetlake ingest` turns /healthz 503 naming the partition and the last error, /metrics shows
// the partition's time without progress; with ClickHouse back, /healthz is 200 again and every
// frame is stored once.
func TestStallUnready(t *testing.T) {
	topic, stats, group, db := names("stall")
	createTopic(t, topic, 1)
	createTopic(t, stats, 1)
	spawn := ownClickHouse(t)
	ch := spawn(0, 0)
	tcpPort, httpPort := port(t, ch.TCPAddr()), port(t, ch.HTTPAddr())
	cfg := testConfig(ch, topic, stats, group, db, WriterArrowHTTP)
	addr := freeAddr(t)
	var log logbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ingest log:\n%s", log.String())
		}
	})
	ingestChild(t, cfg, &log, nil, "--metrics-addr", addr, "--stall-timeout", "2s")
	healthz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	waitHealthz := func(want int, within time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := healthz()
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz is %d %q after %s, want %d", code, body, within, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitHealthz(http.StatusOK, time.Minute)

	cl := producer(t)
	s := newStream("host-stall", 77)
	produce(t, cl, topic, s.host, s.frame(500), s.frame(500))
	conn := chConn(t, ch.TCPAddr())
	waitRows(t, conn, db, s.sent(), time.Minute)

	if err := ch.Kill(); err != nil {
		t.Fatal(err)
	}
	produce(t, cl, topic, s.host, s.frame(500), s.frame(500))
	t0 := time.Now()
	body := waitHealthz(http.StatusServiceUnavailable, 30*time.Second)
	t.Logf("/healthz 503 %s after ClickHouse died: %s", time.Since(t0).Round(100*time.Millisecond), body)
	if want := "partition " + topic + "/0 made no progress"; !strings.Contains(body, want) || !strings.Contains(body, "last error") {
		t.Errorf("/healthz says %q; want it to name %q and the last error", body, want)
	}
	if v := scrape(t, addr, `packetlake_ingester_partition_stalled_seconds{partition="0",topic="`+topic+`"}`); v < 2 {
		t.Errorf("partition_stalled_seconds = %v while stalled, want >= the 2 s stall timeout", v)
	}
	if v := scrape(t, addr, "packetlake_ingester_stalled_partitions"); v != 1 {
		t.Errorf("stalled_partitions = %v, want 1", v)
	}

	ch = spawn(tcpPort, httpPort)
	t0 = time.Now()
	waitHealthz(http.StatusOK, time.Minute)
	t.Logf("/healthz 200 again %s after ClickHouse restarted", time.Since(t0).Round(100*time.Millisecond))
	waitRows(t, chConn(t, ch.TCPAddr()), db, s.sent(), time.Minute)
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape reads one sample (name with its labels, as the text format prints it) from /metrics.
func scrape(t *testing.T, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/metrics has no %s", sample)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
