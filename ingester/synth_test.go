package ingester

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// Synthetic traffic: every kernel column gets a value derived from the packet's seq, a third of
// the packets carry an HTTP request snippet (string columns), a fifth are IPv6.

// wallBase is the wall-clock time of seq 0; a test's packets stay within the same day, so one
// batch never spans many partitions of the packets table.
var wallBase = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano()

func mix(x uint64) uint64 { // splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// appendSample appends the pl_record sample of packet seq.
func appendSample(b []byte, seq uint64) []byte {
	h, g := mix(seq), mix(seq^0xabcdef)
	p := record.Packet{
		Ifindex: uint32(h%8) + 1, PktLen: 60 + uint32(h>>8)%1400,
		SrcMAC: h >> 16 & 0xffffffffffff, DstMAC: g & 0xffffffffffff,
		EthType: 0x0800, VlanID: uint16(g>>48) % 4095, IPVersion: 4,
		IPProto: 17, TTL: uint8(h >> 40), TOS: uint8(h >> 48), IPLen: uint16(h>>24) % 1500,
		IPID: uint32(g >> 8), IPFlags: uint8(g>>56) & 3, FragOffset: uint16(g>>20) % 8,
		SrcPort: uint16(h >> 32), DstPort: uint16(g >> 40), TCPFlags: uint16(h>>3) & 0x1ff,
		TCPSeq: uint32(h), TCPAck: uint32(g), TCPWindow: uint16(g >> 24), ICMPType: uint8(h >> 56),
		ICMPCode: uint8(g >> 4), PayloadLen: uint16(g>>12) % 1400, SampleRate: 1 + uint32(seq%3),
	}
	v4 := [4]byte{10, byte(seq >> 16), byte(seq >> 8), byte(seq)}
	p.SrcAddr = netip.AddrFrom4(v4).As16()
	p.DstAddr = netip.AddrFrom4([4]byte{192, 168, byte(h >> 8), byte(h)}).As16()
	if seq%5 == 0 {
		p.IPVersion, p.EthType, p.FlowLabel, p.IP6Ext = 6, 0x86dd, uint32(h)&0xfffff, uint8(g)&0x3f
		binary.BigEndian.PutUint64(p.SrcAddr[:], 0x20010db800000000|seq>>32)
		binary.BigEndian.PutUint64(p.SrcAddr[8:], h)
	}
	if seq%50 == 7 {
		p.ParseError = "udp_truncated"
	}
	var kind uint8
	var snippet []byte
	if seq%3 == 0 {
		p.IPProto, kind = 6, schema.L7HTTP
		snippet = fmt.Appendf(nil, "GET /obj/%d?q=%x HTTP/1.1\r\nHost: h%d.example.org\r\nUser-Agent: t\r\n\r\n", seq, h, seq%7)
	}
	return record.AppendKernel(b, &p, 1_000_000_000+seq*1_000, kind, snippet)
}

// collectorStream produces the frames of one synthetic collector run.
type collectorStream struct {
	host, iface string
	id, next    uint64
	fb          record.FrameBuilder
	sample      []byte
}

func newStream(host string, id uint64) *collectorStream {
	return &collectorStream{host: host, iface: "eth0", id: id}
}

// collectorKey names one collector run: its packets are (host, collector_id, seq 0, 1, ...).
type collectorKey struct {
	host string
	id   uint64
}

// sent is what a test produced: per collector run, packets with seq 0 to n-1. Exactly once
// means packets holds each of them once and nothing else.
type sent map[collectorKey]uint64

// sent is what the stream produced so far.
func (s *collectorStream) sent() sent { return sent{{s.host, s.id}: s.next} }

func (s sent) total() uint64 {
	var n uint64
	for _, v := range s {
		n += v
	}
	return n
}

// add adds o's collector runs to s and returns s.
func (s sent) add(o sent) sent {
	for k, v := range o {
		s[k] += v
	}
	return s
}

// frame returns the next frame of n packets (a copy: the builder reuses its buffer).
func (s *collectorStream) frame(n int) []byte {
	s.fb.Reset(record.FrameHeader{CollectorID: s.id, FirstSeq: s.next, ClockOffset: wallBase - 1_000_000_000, Host: s.host, Iface: s.iface})
	for range n {
		s.sample = appendSample(s.sample[:0], s.fb.NextSeq())
		s.fb.Append(s.sample)
	}
	s.next = s.fb.NextSeq()
	return append([]byte(nil), s.fb.Bytes()...)
}

// poison returns bad frames of several kinds, all refused by record.ParseFrame.
func poison(i int, good []byte) []byte {
	switch i % 4 {
	case 0:
		return []byte("not a frame at all")
	case 1: // truncated mid-sample
		return append([]byte(nil), good[:len(good)-7]...)
	case 2: // wrong magic
		b := append([]byte(nil), good...)
		b[0] = 'X'
		return b
	default: // sample count lies
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint32(b[8:], binary.LittleEndian.Uint32(b[8:])+1)
		return b
	}
}

func producer(t testing.TB) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.Addr()), kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce sends records synchronously; the key spreads frames over partitions like the
// collector's host/iface key would across many collectors.
func produce(t testing.TB, cl *kgo.Client, topic string, key string, values ...[]byte) []*kgo.Record {
	t.Helper()
	rs := make([]*kgo.Record, len(values))
	for i, v := range values {
		rs[i] = &kgo.Record{Topic: topic, Key: []byte(key), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	return rs
}

// background produces, in a goroutine, frames frames of perFrame packets for each of
// collectors collectors (keys host-0, host-1, ..., collector ids 7000, 7001, ...), one round
// every pace. It returns what it will have sent and a channel closed once Kafka acknowledged it
// all.
func background(t testing.TB, topic string, collectors, frames, perFrame int, pace time.Duration) (sent, <-chan struct{}) {
	t.Helper()
	cl := producer(t)
	done := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	// A test that ends early stops the producer before its client closes.
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		streams := make([]*collectorStream, collectors)
		for c := range streams {
			streams[c] = newStream(fmt.Sprintf("host-%d", c), uint64(7000+c))
		}
		for range frames {
			rs := make([]*kgo.Record, collectors)
			for c, s := range streams {
				rs[c] = &kgo.Record{Topic: topic, Key: []byte(s.host), Value: s.frame(perFrame)}
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				if ctx.Err() == nil {
					t.Errorf("background produce: %v", err)
				}
				return
			}
			time.Sleep(pace)
		}
	}()
	want := sent{}
	for c := range collectors {
		want[collectorKey{fmt.Sprintf("host-%d", c), uint64(7000 + c)}] = uint64(frames * perFrame)
	}
	return want, done
}

// statsMessage is a collector stats message as record.Stats encodes it (a few fields).
func statsMessage(host string, id uint64, i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": 1, "time": time.Unix(0, wallBase).Add(time.Duration(i) * time.Second).UTC(),
		"host": host, "iface": "eth0", "collector_id": id, "kernel_seen": 1000 * i, "records_acked": 900 * i,
	})
	return b
}

// expectRows decodes frames with record.Frame (the oracle: the ingester must store exactly what
// the decoder says) and returns the rows of the wanted seqs, formatted like rowQuery.
func expectRows(t testing.TB, frames [][]byte, want map[uint64]bool) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	var p record.Packet
	for _, f := range frames {
		h, samples, err := record.ParseFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := record.Frame(h, samples, &p, func(p *record.Packet) error {
			if want[p.Seq] {
				out[p.Seq] = formatPacket(p)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// formatPacket renders every column of p in schema order, as ClickHouse's toString does.
func formatPacket(p *record.Packet) string {
	v := reflect.ValueOf(p).Elem()
	byTag := map[string]reflect.Value{}
	for i := 0; i < v.NumField(); i++ {
		byTag[v.Type().Field(i).Tag.Get("col")] = v.Field(i)
	}
	parts := make([]string, len(schema.Columns))
	for i, c := range schema.Columns {
		f := byTag[c.Name]
		switch f.Kind() {
		case reflect.Int64:
			parts[i] = strconv.FormatInt(f.Int(), 10)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			parts[i] = strconv.FormatUint(f.Uint(), 10)
		case reflect.String:
			parts[i] = f.String()
		case reflect.Array:
			parts[i] = netip.AddrFrom16(f.Interface().([16]byte)).String()
		}
	}
	return strings.Join(parts, "|")
}

// rowQuery selects every column of packets, rendered like formatPacket, keyed by seq.
func rowQuery() string {
	exprs := make([]string, len(schema.Columns))
	for i, c := range schema.Columns {
		if c.Name == "ts" {
			exprs[i] = "toString(toUnixTimestamp64Nano(ts))"
		} else {
			exprs[i] = "toString(" + c.Name + ")"
		}
	}
	return "SELECT seq, arrayStringConcat([" + strings.Join(exprs, ", ") + "], '|') AS row FROM packets"
}

// checkRows compares the stored rows of the wanted seqs of one collector with the oracle.
func checkRows(t testing.TB, conn driver.Conn, db string, collectorID uint64, want map[uint64]string) {
	t.Helper()
	seqs := make([]string, 0, len(want))
	for s := range want {
		seqs = append(seqs, strconv.FormatUint(s, 10))
	}
	var got []struct {
		Seq uint64 `ch:"seq"`
		Row string `ch:"row"`
	}
	q := strings.Replace(rowQuery(), "FROM packets", "FROM "+db+".packets", 1) +
		fmt.Sprintf(" WHERE collector_id = %d AND seq IN (%s)", collectorID, strings.Join(seqs, ","))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.Select(ctx, &got, q); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("collector %d: %d of %d sampled rows found", collectorID, len(got), len(want))
	}
	for _, g := range got {
		if w := want[g.Seq]; g.Row != w {
			t.Errorf("collector %d seq %d:\n stored %s\n want   %s", collectorID, g.Seq, g.Row, w)
		}
	}
}

// counts is what exactly-once is judged on.
type counts struct {
	Rows    uint64 `ch:"rows"`
	Uniq    uint64 `ch:"uniq"`
	MaxDups uint64 `ch:"max_dups"`
}

func packetCounts(t testing.TB, conn driver.Conn, db string) counts {
	t.Helper()
	var c []counts
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := "SELECT count() AS rows, uniqExact(host, collector_id, seq) AS uniq, " +
		"(SELECT max(c) FROM (SELECT count() AS c FROM " + db + ".packets GROUP BY host, collector_id, seq)) AS max_dups FROM " + db + ".packets"
	if err := readRetry(func() error { c = c[:0]; return conn.Select(ctx, &c, q) }); err != nil {
		t.Fatal(err)
	}
	return c[0]
}

// waitPackets polls until packets holds at least n rows and returns the count.
func waitPackets(t testing.TB, conn driver.Conn, db string, n uint64, timeout time.Duration) uint64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := packetCounts(t, conn, db).Rows
		if c >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("packets: %d rows after %v, waiting for %d", c, timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGrowth polls until packets holds at least from+by rows and returns the count: a kill
// point placed by what ClickHouse shows, not by time.
func waitGrowth(t testing.TB, conn driver.Conn, db string, from, by uint64) uint64 {
	t.Helper()
	return waitPackets(t, conn, db, from+by, time.Minute)
}

// settle is how long the row count must stay unchanged before a test judges it: a duplicate
// (a replay, a zombie's late INSERT) arrives after the rows it doubles.
const settle = 2 * time.Second

// waitStable polls until packets holds at least n rows and the count stopped moving for
// settle, then checks that it holds n rows, each (host, collector_id, seq) once. A test whose
// rows are not seqs 0..n-1 of each collector run checks which they are itself.
func waitStable(t testing.TB, conn driver.Conn, db string, n uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var c counts
	since := time.Now()
	for {
		cur := packetCounts(t, conn, db)
		if cur.Rows != c.Rows {
			since = time.Now()
		}
		c = cur
		if c.Rows >= n && time.Since(since) >= settle || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if c.Rows != n || c.Uniq != n || c.MaxDups > 1 {
		t.Fatalf("packets: %d rows, %d distinct (host, collector_id, seq), max copies %d; want %d once each", c.Rows, c.Uniq, c.MaxDups, n)
	}
}

// waitRows waits until packets is stable (waitStable) and checks it is exactly what was sent:
// every collector run's seqs 0..n-1 once each, and no other row.
func waitRows(t testing.TB, conn driver.Conn, db string, want sent, timeout time.Duration) {
	t.Helper()
	waitStable(t, conn, db, want.total(), timeout)
	checkExactlyOnce(t, conn, db, want)
}

// checkExactlyOnce compares packets with what was sent, per collector run: count, distinct
// seqs, lowest and highest seq. Equal on all four means the very set of seqs 0..n-1, once.
func checkExactlyOnce(t testing.TB, conn driver.Conn, db string, want sent) {
	t.Helper()
	var got []struct {
		Host string `ch:"host"`
		ID   uint64 `ch:"collector_id"`
		N    uint64 `ch:"n"`
		Uniq uint64 `ch:"uniq"`
		Lo   uint64 `ch:"lo"`
		Hi   uint64 `ch:"hi"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := "SELECT host, collector_id, count() AS n, uniqExact(seq) AS uniq, min(seq) AS lo, max(seq) AS hi FROM " + db +
		".packets GROUP BY host, collector_id ORDER BY host, collector_id"
	if err := readRetry(func() error { got = got[:0]; return conn.Select(ctx, &got, q) }); err != nil {
		t.Fatal(err)
	}
	seen := map[collectorKey]bool{}
	var bad []string
	for _, g := range got {
		k := collectorKey{g.Host, g.ID}
		seen[k] = true
		n, ok := want[k]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s/%d: %d rows nobody sent", g.Host, g.ID, g.N))
		case g.N != n || g.Uniq != n || g.Lo != 0 || g.Hi != n-1:
			bad = append(bad, fmt.Sprintf("%s/%d: %d rows, %d distinct seqs in [%d, %d]; sent %d, seqs [0, %d]",
				g.Host, g.ID, g.N, g.Uniq, g.Lo, g.Hi, n, n-1))
		}
	}
	for k, n := range want {
		if !seen[k] && n > 0 {
			bad = append(bad, fmt.Sprintf("%s/%d: no row of the %d sent", k.host, k.id, n))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("packets is not exactly what was sent (%d packets):\n  %s", want.total(), strings.Join(bad, "\n  "))
	}
}

func queryCount(t testing.TB, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := readRetry(func() error { return conn.QueryRow(ctx, q).Scan(&n) }); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// readRetry retries a read twice: once, mid-suite, a fresh connection of the test itself got
// EOF from a healthy server; a check should not fail on its own plumbing.
func readRetry(fn func() error) error {
	err := fn()
	for i := 0; err != nil && i < 2; i++ {
		time.Sleep(200 * time.Millisecond)
		err = fn()
	}
	return err
}
