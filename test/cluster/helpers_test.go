package cluster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/test/analytics"
)

// ingestProc is one `packetlake ingest` child that the test can SIGKILL and start again with
// the same command line.
type ingestProc struct {
	t       *testing.T
	name    string
	args    []string
	log     string
	metrics string // host:port of its /metrics
	cmd     *exec.Cmd
	done    chan struct{}
}

func startIngestProc(t *testing.T, name string, args ...string) *ingestProc {
	t.Helper()
	p := &ingestProc{t: t, name: name, log: filepath.Join(t.TempDir(), name+".log"), metrics: freeAddr(t)}
	p.args = append([]string{"ingest", "--metrics-addr", p.metrics}, args...)
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("%s log (last 3000 bytes):\n%s", name, tail(string(b), 3000))
		}
	})
	return p
}

func (p *ingestProc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(env.Bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := childproc.Start(p.cmd); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.done = done
	cmd := p.cmd
	go func() { cmd.Wait(); close(done) }()
}

// kill is a crash: SIGKILL, then wait until the process is gone.
func (p *ingestProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *ingestProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *ingestProc) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

// rowsInserted reads the ingester's packets rows counter from /metrics (-1 if unreachable).
func (p *ingestProc) rowsInserted() float64 {
	resp, err := metricsClient.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "packetlake_ingester_rows_inserted_total{") && strings.Contains(l, `table="packets"`) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

// assignEvent matches the ingester's log of its assignments; slog quotes the map only when it
// holds a space (more than one topic or partition).
var assignEvent = regexp.MustCompile(`msg="partitions (assigned|revoked|lost)" partitions="?map\[(.*)\]"?\s*$`)

// owned returns the partitions of topic the ingester holds, from the assignments, revocations
// and losses its log reported in order.
func (p *ingestProc) owned(topic string) map[int32]bool {
	b, _ := os.ReadFile(p.log)
	out := map[int32]bool{}
	topicParts := regexp.MustCompile(regexp.QuoteMeta(topic) + `:\[([0-9 ]*)\]`)
	for _, line := range strings.Split(string(b), "\n") {
		m := assignEvent.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		tp := topicParts.FindStringSubmatch(m[2])
		if tp == nil {
			continue
		}
		for _, f := range strings.Fields(tp[1]) {
			n, _ := strconv.Atoi(f)
			if m[1] == "assigned" {
				out[int32(n)] = true
			} else {
				delete(out, int32(n))
			}
		}
	}
	return out
}

var metricsClient = &http.Client{Timeout: 3 * time.Second}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kafkaView observes the Kafka cluster: end offsets, in-sync replicas, committed offsets.
type kafkaView struct {
	adm *kadm.Client
}

func newKafkaView(t *testing.T) kafkaView {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.KafkaCluster.Addrs()...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kafkaView{adm: kadm.NewClient(cl)}
}

// endOffsets of topic's partitions; nil while the cluster cannot say.
func (k kafkaView) endOffsets(ctx context.Context, topic string) map[int32]int64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := k.adm.ListEndOffsets(ctx, topic)
	if err != nil || res.Error() != nil {
		return nil
	}
	out := map[int32]int64{}
	res.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// committed offsets of group on topic; nil while the cluster cannot say.
func (k kafkaView) committed(ctx context.Context, group, topic string) map[int32]int64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := k.adm.FetchOffsets(ctx, group)
	if err != nil || res.Error() != nil {
		return nil
	}
	out := map[int32]int64{}
	for p, o := range res[topic] {
		out[p] = o.At
	}
	return out
}

// fullISR reports whether every partition of topics has a leader and all 3 replicas in sync.
func (k kafkaView) fullISR(ctx context.Context, topics ...string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	m, err := k.adm.Metadata(ctx, topics...)
	if err != nil {
		return false
	}
	for _, td := range m.Topics {
		if td.Err != nil {
			return false
		}
		for _, pd := range td.Partitions {
			if pd.Err != nil || pd.Leader < 0 || len(pd.ISR) != 3 {
				return false
			}
		}
	}
	return true
}

// advancedSince returns once every partition in base has moved beyond its offset there (read
// by now), and how long that took from since.
func advancedSince(ctx context.Context, t *testing.T, what string, since time.Time, base map[int32]int64, now func() map[int32]int64) time.Duration {
	t.Helper()
	for ctx.Err() == nil {
		cur := now()
		if cur != nil {
			all := true
			for p, o := range base {
				all = all && cur[p] > o
			}
			if all {
				return time.Since(since)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: partitions %v never advanced", what, base)
	return 0
}

// busy returns the partitions whose offsets grew over d.
func busy(ctx context.Context, d time.Duration, now func() map[int32]int64) map[int32]int64 {
	a := now()
	time.Sleep(d)
	b := now()
	out := map[int32]int64{}
	for p, o := range b {
		if o > a[p] {
			out[p] = o
		}
	}
	return out
}

// waitFor polls cond every 100 ms until it holds, failing after limit.
func waitFor(ctx context.Context, t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit && ctx.Err() == nil {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, limit)
	return 0
}

// chHTTP is a client of one ClickHouse's HTTP interface on database db.
func chHTTP(t *testing.T, httpAddr, db string) analytics.CH {
	t.Helper()
	c, err := analytics.NewCH(chconn.Config{HTTPAddr: httpAddr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// uintOr returns the one unsigned number sql returns, or ^0 on an error (a shard down).
func uintOr(ctx context.Context, c analytics.CH, sql string) uint64 {
	n, err := c.Uint(ctx, sql)
	if err != nil {
		return ^uint64(0)
	}
	return n
}

func fmtOffsets(m map[int32]int64) string {
	var b strings.Builder
	for p, o := range m {
		fmt.Fprintf(&b, "%d:%d ", p, o)
	}
	return b.String()
}
