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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/internal/netns"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
)

// A collector killed with SIGKILL mid-traffic loses nothing uncounted: its program stays attached
// and pinned, the restarted collector adopts it and continues the run (same collector_id, seq
// going on), the packets of the gap are stored from the ring, and what the dead process had read
// but not delivered is found in Kafka or counted lost. Then SIGTERM keeps the program recording,
// and `collect --detach` ships what the ring gathered meanwhile, detaches and removes every pin.
// Real kernel (XDP on a veth in test-made namespaces), Apache Kafka, ClickHouse, and the collector
// and ingester as processes of the packetlake binary. Per host, across the restart:
//
//	kernel seen == rows stored + ring_full + sampled_out + shed + failed + malformed + restart_lost
//
// with every row's (host, collector_id, seq) unique, and loss_budget showing one run.
func TestCollectorRestartLosesNothingUncounted(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	l := newPinLab(t, ctx, "restart", "--flow-interval", "1h", "--metrics-addr", "")
	v, db, host, pinDir, args, start := l.v, l.db, l.host, l.pinDir, l.args, l.start

	first := startCollect(t, "first", args...)
	firstID := first.waitLog(t, ctx, "collector started")["collector_id"]
	rows := fmt.Sprintf("SELECT count() FROM %s.packets WHERE host = '%s'", db, host)
	warm := startFlood(t, v, 1_000, 10_000) // until the pipeline delivers: the kill point is then early in the flood
	<-warm.done
	waitCount(t, ctx, rows, 500) // a few datagrams may wait for ARP and be dropped
	fl := startFlood(t, v, 150_000, 25_000)

	// Kill point: the first process's records of the flood are visible in ClickHouse.
	waitCount(t, ctx, rows, 10_500)
	first.kill(t)
	killedAt, sentAtKill := time.Now(), fl.sent.Load()
	if !pinsPresent(t, pinDir) || xdpOn(t, v) != 1 {
		t.Fatalf("after SIGKILL: pins %v, %d XDP programs on %s; want both kept", pinsPresent(t, pinDir), xdpOn(t, v), v.Name)
	}
	// The gap: packets arrive with no collector, and go into the pinned ring.
	for fl.sent.Load() < sentAtKill+20_000 && !fl.finished() {
		time.Sleep(10 * time.Millisecond)
	}
	second := startCollect(t, "second", args...)
	adopted := second.waitLog(t, ctx, "adopted the pinned program: the run continues")
	restartedAt := time.Now()
	if got := second.waitLog(t, ctx, "collector started")["collector_id"]; got != firstID {
		t.Errorf("restarted collector's collector_id %v, want the first's %v", got, firstID)
	}
	<-fl.done

	// SIGTERM keeps the program recording for the next collector.
	second.term(t)
	if !pinsPresent(t, pinDir) || xdpOn(t, v) != 1 {
		t.Fatalf("after SIGTERM: pins %v, %d XDP programs on %s; want both kept (--on-stop keep)", pinsPresent(t, pinDir), xdpOn(t, v), v.Name)
	}
	after := startFlood(t, v, 3_000, 20_000)
	<-after.done
	// Detach for good: the ring's last records are shipped, then nothing is left.
	det := startCollect(t, "detach", append(args, "--detach")...)
	if err := det.wait(60 * time.Second); err != nil {
		t.Fatalf("collect --detach: %v\n%s", err, det.logText())
	}
	if n := xdpOn(t, v); n != 0 || pinsPresent(t, pinDir) {
		t.Fatalf("after --detach: %d XDP programs on %s, pins left: %v\n%s", n, v.Name, pinsPresent(t, pinDir), det.logText())
	}
	if _, err := os.Stat(pinDir); !os.IsNotExist(err) {
		t.Errorf("pin directory %s still exists after --detach (%v)", pinDir, err)
	}

	// Wait until the run's last stats message and every row are in, and stable.
	ch := env.CH(t)
	var final record.Stats
	for ctx.Err() == nil {
		var raw string
		err := ch.QueryRow(ctx, fmt.Sprintf("SELECT raw FROM %s.collector_stats WHERE host = '%s' ORDER BY ts DESC LIMIT 1", db, host)).Scan(&raw)
		if err == nil && json.Unmarshal([]byte(raw), &final) == nil && final.Processes == 3 &&
			final.KernelSeen == final.KernelEmitted+final.KernelRingFull+final.KernelSampledOut && final.SamplesRead > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stored := waitStable(t, ctx, fmt.Sprintf("SELECT count() FROM %s.packets WHERE host = '%s'", db, host), final.RecordsAcked)

	t.Logf("flood sent %d+%d+%d, killed after %d of the second, restarted %.1fs later; adopted: %v", warm.sent.Load(), fl.sent.Load(),
		after.sent.Load(), sentAtKill, restartedAt.Sub(killedAt).Seconds(), adopted)
	t.Logf("final stats: seen %d emitted %d ring_full %d sampled_out %d read %d malformed %d acked %d shed %d failed %d lost_restart %d processes %d; stored %d",
		final.KernelSeen, final.KernelEmitted, final.KernelRingFull, final.KernelSampledOut, final.SamplesRead, final.SamplesMalformed,
		final.RecordsAcked, final.RecordsShed, final.RecordsFailed, final.RecordsLostRestart, final.Processes, stored)

	counted := final.KernelRingFull + final.KernelSampledOut + final.RecordsShed + final.RecordsFailed + final.SamplesMalformed + final.RecordsLostRestart
	if final.KernelSeen != stored+counted {
		t.Errorf("kernel seen %d != stored %d + counted losses %d", final.KernelSeen, stored, counted)
	}
	if final.KernelEmitted != final.SamplesRead+final.SamplesMalformed {
		t.Errorf("kernel emitted %d != read %d + malformed %d: records left in the ring", final.KernelEmitted, final.SamplesRead, final.SamplesMalformed)
	}
	var ids, gapRows, maxSeq uint64
	var dups int64
	q := fmt.Sprintf("SELECT uniqExact(collector_id), count() - uniqExact(host, collector_id, seq), "+
		"countIf(ts > fromUnixTimestamp64Nano(%d) AND ts < fromUnixTimestamp64Nano(%d)), max(seq) FROM %s.packets WHERE host = '%s'",
		killedAt.UnixNano(), restartedAt.UnixNano(), db, host)
	if err := ch.QueryRow(ctx, q).Scan(&ids, &dups, &gapRows, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if ids != 1 || dups != 0 {
		t.Errorf("packets rows: %d collector_ids (want 1: one run), %d duplicate (host, collector_id, seq)", ids, dups)
	}
	if gapRows == 0 {
		t.Errorf("no rows captured while no collector ran: the gap's packets were not kept in the ring")
	}
	if missing := maxSeq + 1 - stored; maxSeq+1 != final.SamplesRead || missing != final.RecordsShed+final.RecordsFailed+final.RecordsLostRestart {
		t.Errorf("seq: max %d, %d rows, read %d: %d seq numbers without a row, want shed %d + failed %d + lost %d",
			maxSeq, stored, final.SamplesRead, missing, final.RecordsShed, final.RecordsFailed, final.RecordsLostRestart)
	}
	var statsIDs uint64
	if err := ch.QueryRow(ctx, fmt.Sprintf("SELECT uniqExact(collector_id) FROM %s.collector_stats WHERE host = '%s'", db, host)).Scan(&statsIDs); err != nil || statsIDs != 1 {
		t.Errorf("collector_stats: %d collector_ids (%v), want 1", statsIDs, err)
	}
	// The flow tables were adopted with the exporter's baseline: the flows table holds each
	// packet the kernel counted once. Flows are exported at the SIGTERM and at the detach only
	// (--flow-interval 1h): the second process's export becomes the baseline the detaching one
	// goes on from. (A periodic export in flight at the SIGKILL may be sent again by the next
	// process: the flows' end-to-end idempotence is another item of issue 13.)
	var flowPackets uint64
	for ctx.Err() == nil {
		if err := ch.QueryRow(ctx, fmt.Sprintf("SELECT sum(packets) FROM %s.flows WHERE host = '%s'", db, host)).Scan(&flowPackets); err == nil &&
			flowPackets >= final.FlowPacketsExported {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("flows: %d packets stored, %d exported, kernel counted %d", flowPackets, final.FlowPacketsExported, final.KernelFlowCounted)
	if flowPackets != final.KernelFlowCounted || final.FlowPacketsExported != final.KernelFlowCounted {
		t.Errorf("flows table holds %d packets, the run exported %d, the kernel counted %d", flowPackets, final.FlowPacketsExported, final.KernelFlowCounted)
	}
	// loss_budget over the whole test: one run, no reset, every loss in its column.
	b := lossBudgetSums(t, ctx, db, start)[host]
	if b.Seen != final.KernelSeen || b.Stored != stored || b.RestartLost != final.RecordsLostRestart || b.IngestLost != 0 ||
		b.Stored+b.RingFull+b.Shed+b.Failed+b.RestartLost+b.Malformed+b.Sampled != b.Seen {
		t.Errorf("loss_budget summed: %+v; want seen %d = stored %d + its loss columns (restart_lost %d)", b, final.KernelSeen, stored, final.RecordsLostRestart)
	}
}

// pinLab is what the restart tests share: a veth pair in test-made namespaces, topics, a
// database with an ingester process filling it, a pin directory, and the collect command line
// (no sampling: every packet of the ring's worth of traffic has its record).
type pinLab struct {
	v                *nettest.Veth
	db, host, pinDir string
	args             []string
	start            time.Time
}

func newPinLab(t *testing.T, ctx context.Context, name string, extra ...string) *pinLab {
	t.Helper()
	l := &pinLab{start: time.Now(), v: nettest.NewVethPair(t), pinDir: testPinDir(t)}
	topic, stats, flows := env.Topic(t, 1), env.Topic(t, 1), env.Topic(t, 1)
	l.db = strings.ReplaceAll(env.Topic(t, 1), "-", "_")
	l.host = name + "-" + l.db[len(l.db)-4:]
	l.args = slices.Clip(append([]string{"collect", "--netns", l.v.NS, "--iface", l.v.Name, "--brokers", env.Kafka.Addr(),
		"--topic", topic, "--stats-topic", stats, "--flows-topic", flows, "--host", l.host, "--pin-dir", l.pinDir,
		"--sample-max", "1", "--ring-bytes", "32M", "--stats-interval", "500ms", "--frame-max-age", "50ms",
		"--log-format", "json"}, extra...)) // clipped: each test appends its own flags
	t.Cleanup(startIngest(t, ctx, topic, stats, flows, name+"-"+l.db, l.db))
	return l
}

// testPinDir is a pin directory of this test's own, removed (which unpins and so detaches) at
// the end whatever happened.
func testPinDir(t *testing.T) string {
	dir := filepath.Join("/sys/fs/bpf/packetlake-test", fmt.Sprintf("%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	t.Cleanup(func() {
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		os.Remove(dir)
		os.Remove(filepath.Dir(dir)) // the shared parent, once no test uses it (fails while one does)
	})
	return dir
}

func pinsPresent(t *testing.T, dir string) bool {
	ents, _ := os.ReadDir(dir)
	return len(ents) > 0
}

// xdpOn counts the XDP programs bpftool shows on the observed end.
func xdpOn(t *testing.T, v *nettest.Veth) int {
	out := nettest.MustExec(t, v.NS, "bpftool", "-j", "net", "show", "dev", v.Name)
	var res []struct {
		XDP []json.RawMessage `json:"xdp"`
		TC  []json.RawMessage `json:"tc"`
		TCX []json.RawMessage `json:"tcx"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("bpftool net show: %v\n%s", err, out)
	}
	n := 0
	for _, r := range res {
		n += len(r.XDP) + len(r.TC) + len(r.TCX)
	}
	return n
}

// collectProc is a `packetlake collect` child whose JSON log the test reads.
type collectProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startCollect(t *testing.T, name string, args ...string) *collectProc {
	t.Helper()
	p := &collectProc{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(env.Bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := childproc.Start(p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s collector log:\n%s", name, tailString(p.logText(), 6000))
		}
	})
	return p
}

func (p *collectProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// waitLog waits for a log line with message msg and returns its fields.
func (p *collectProc) waitLog(t *testing.T, ctx context.Context, msg string) map[string]any {
	t.Helper()
	for ctx.Err() == nil {
		sc := bufio.NewScanner(strings.NewReader(p.logText()))
		for sc.Scan() {
			var m map[string]any
			d := json.NewDecoder(strings.NewReader(sc.Text()))
			d.UseNumber() // collector_id is a uint64
			if d.Decode(&m) == nil && m["msg"] == msg {
				return m
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s collector exited (%v) before logging %q:\n%s", p.name, p.err, msg, tailString(p.logText(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s collector never logged %q", p.name, msg)
	return nil
}

func (p *collectProc) kill(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *collectProc) term(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(30 * time.Second); err != nil {
		t.Fatalf("%s collector after SIGTERM: %v\n%s", p.name, err, tailString(p.logText(), 4000))
	}
}

func (p *collectProc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("still running after %s", d)
	}
}

// flood sends n UDP datagrams from the peer end to the observed one at about pps.
type flood struct {
	sent atomic.Uint64
	done chan struct{}
}

func (f *flood) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func startFlood(t *testing.T, v *nettest.Veth, n, pps int) *flood {
	t.Helper()
	var conn *net.UDPConn
	if err := netns.Do(v.PeerNS, func() (err error) {
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: v.Addr.AsSlice(), Port: 9})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f := &flood{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer conn.Close()
		payload := make([]byte, 64)
		const burst = 100
		tick := time.Duration(burst) * time.Second / time.Duration(pps)
		next := time.Now()
		for i := 0; i < n; i++ {
			payload[0], payload[1] = byte(i), byte(i>>8)
			if _, err := conn.Write(payload); err == nil {
				f.sent.Add(1)
			}
			if i%burst == burst-1 {
				next = next.Add(tick)
				time.Sleep(time.Until(next))
			}
		}
	}()
	return f
}

// waitCount waits until query's count reaches at least n.
func waitCount(t *testing.T, ctx context.Context, query string, n uint64) {
	t.Helper()
	ch := env.CH(t)
	var got uint64
	for ctx.Err() == nil {
		if err := ch.QueryRow(ctx, query).Scan(&got); err == nil && got >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %d, never reached %d", query, got, n)
}

// waitStable waits until query's count reaches want and stays put for a second (more would be
// duplicates or a late frame), and returns it.
func waitStable(t *testing.T, ctx context.Context, query string, want uint64) uint64 {
	t.Helper()
	ch := env.CH(t)
	var got, last uint64
	stableSince := time.Now()
	for ctx.Err() == nil {
		if err := ch.QueryRow(ctx, query).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != last {
			last, stableSince = got, time.Now()
		}
		if got >= want && time.Since(stableSince) > time.Second {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %d, want %d", query, got, want)
	return got
}

// A collector whose record layout differs from the pinned program's replaces it instead of
// reading its ring: the old program is detached and gone, its run ends with a last stats message
// that counts the records left in its ring (records_discarded), the replacement is logged and
// counted on /metrics, and a new run starts with a new collector_id. Each run balances on its
// own, and loss_budget over both. The pin is made "of another layout" by changing the layout
// fingerprint in its run page, which is what a binary with another struct pl_record would find.
func TestCollectorReplacesPinOfAnotherLayout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	l := newPinLab(t, ctx, "replace", "--on-stop", "detach")
	v, db, host, pinDir, args, start := l.v, l.db, l.host, l.pinDir, l.args, l.start

	old := startCollect(t, "old", append(args, "--metrics-addr", "")...)
	oldID := old.waitLog(t, ctx, "collector started")["collector_id"]
	fl := startFlood(t, v, 30_000, 30_000)
	waitCount(t, ctx, fmt.Sprintf("SELECT count() FROM %s.packets WHERE host = '%s'", db, host), 5_000)
	old.kill(t)
	<-fl.done // the rest waits in the old ring
	oldProg := xdpProgID(t, v)
	staleLayout(t, pinDir)

	metrics := freeAddr(t)
	repl := startCollect(t, "replacing", append(args, "--metrics-addr", metrics)...)
	ended := repl.waitLog(t, ctx, "the replaced run ended")
	replaced := repl.waitLog(t, ctx, "replacing the pinned program")
	newID := repl.waitLog(t, ctx, "collector started")["collector_id"]
	if replaced["reason"] != "record_layout" || newID == oldID || ended["old_collector_id"] != oldID {
		t.Errorf("replacement: reason %v, old run %v ended (want %v), new collector_id %v", replaced["reason"], ended["old_collector_id"], oldID, newID)
	}
	if p := xdpProgID(t, v); p == oldProg || p == 0 {
		t.Errorf("XDP program on %s after the replacement: id %d, the old one was %d", v.Name, p, oldProg)
	}
	if out, err := exec.Command("bpftool", "prog", "show", "id", fmt.Sprint(oldProg)).CombinedOutput(); err == nil {
		t.Errorf("the replaced program %d still exists:\n%s", oldProg, out)
	}
	if m := scrape(t, metrics); !strings.Contains(m, `packetlake_collector_pin_replacements_total{host="`+host+`",iface="pl0",reason="record_layout"} 1`) {
		t.Errorf("/metrics has no replacement counted:\n%s", grepLines(m, "pin_"))
	}
	after := startFlood(t, v, 5_000, 20_000)
	<-after.done
	repl.term(t)
	if n := xdpOn(t, v); n != 0 || pinsPresent(t, pinDir) {
		t.Fatalf("after SIGTERM with --on-stop detach: %d XDP programs, pins left %v", n, pinsPresent(t, pinDir))
	}

	// Each run's last stats message, then its rows.
	ch := env.CH(t)
	var total record.Stats
	var totalStored uint64
	for _, id := range []any{oldID, newID} {
		var s record.Stats
		for ctx.Err() == nil {
			var raw string
			err := ch.QueryRow(ctx, fmt.Sprintf("SELECT raw FROM %s.collector_stats WHERE host = '%s' AND collector_id = %v ORDER BY ts DESC LIMIT 1", db, host, id)).Scan(&raw)
			if err == nil && json.Unmarshal([]byte(raw), &s) == nil && s.KernelSeen == s.KernelEmitted+s.KernelRingFull+s.KernelSampledOut &&
				(id == newID && s.KernelEmitted == s.SamplesRead || id == oldID && s.RecordsDiscarded > 0) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		stored := waitStable(t, ctx, fmt.Sprintf("SELECT count() FROM %s.packets WHERE host = '%s' AND collector_id = %v", db, host, id), s.RecordsAcked)
		counted := s.KernelRingFull + s.KernelSampledOut + s.RecordsShed + s.RecordsFailed + s.SamplesMalformed + s.RecordsLostRestart + s.RecordsDiscarded
		t.Logf("run %v: seen %d = stored %d + ring_full %d + lost_restart %d + discarded %d + shed %d + failed %d", id, s.KernelSeen, stored,
			s.KernelRingFull, s.RecordsLostRestart, s.RecordsDiscarded, s.RecordsShed, s.RecordsFailed)
		if s.KernelSeen != stored+counted || stored != s.RecordsAcked {
			t.Errorf("run %v: kernel seen %d != stored %d + counted %d (acked %d)", id, s.KernelSeen, stored, counted, s.RecordsAcked)
		}
		total.KernelSeen += s.KernelSeen
		total.RecordsDiscarded += s.RecordsDiscarded
		totalStored += stored
	}
	var dups int64
	if err := ch.QueryRow(ctx, fmt.Sprintf("SELECT count() - uniqExact(host, collector_id, seq) FROM %s.packets", db)).Scan(&dups); err != nil || dups != 0 {
		t.Errorf("%d duplicate (host, collector_id, seq) (%v)", dups, err)
	}
	b := lossBudgetSums(t, ctx, db, start)[host]
	if b.Seen != total.KernelSeen || b.Stored != totalStored || b.Discarded != total.RecordsDiscarded ||
		b.Stored+b.RingFull+b.Shed+b.Failed+b.RestartLost+b.Discarded+b.Malformed+b.Sampled != b.Seen {
		t.Errorf("loss_budget summed over both runs: %+v; want seen %d = stored %d + losses (discarded %d)", b, total.KernelSeen, totalStored, total.RecordsDiscarded)
	}
}

// staleLayout makes the run pinned in dir look like a binary of another record layout pinned
// it: the layout fingerprint in its run page is changed.
func staleLayout(t *testing.T, dir string) {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "run"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	page := make([]byte, m.ValueSize())
	if err := m.Lookup(uint32(0), &page); err != nil {
		t.Fatal(err)
	}
	fp := bpf.LayoutFingerprint()
	i := bytes.Index(page, fp[:])
	if i < 0 {
		t.Fatal("the run page holds no layout fingerprint")
	}
	page[i] ^= 0xff
	if err := m.Update(uint32(0), page, ebpf.UpdateExist); err != nil {
		t.Fatal(err)
	}
}

// xdpProgID is the id of the XDP program attached to the observed end (0: none).
func xdpProgID(t *testing.T, v *nettest.Veth) int {
	out := nettest.MustExec(t, v.NS, "bpftool", "-j", "net", "show", "dev", v.Name)
	var res []struct {
		XDP []struct {
			ID int `json:"id"`
		} `json:"xdp"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("bpftool net show: %v\n%s", err, out)
	}
	for _, r := range res {
		for _, x := range r.XDP {
			return x.ID
		}
	}
	return 0
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func scrape(t *testing.T, addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
