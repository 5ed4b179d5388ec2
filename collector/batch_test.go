package collector

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
)

// snippetLenOff is where pl_record's snippet_len sits (record/kernel_gen.go).
var snippetLenOff = func() int {
	for _, m := range record.KernelMembers {
		if m.Name == "snippet_len" {
			return m.Offset
		}
	}
	panic("pl_record has no snippet_len")
}()

// TestBatchedSampleWalked: a ring sample holding several records back to back (the program
// batches them) becomes that many records in the frame, byte for byte.
func TestBatchedSampleWalked(t *testing.T) {
	k := startKafka(t)
	c, err := New(testConfig(k.Addr()), Dependencies{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	f := c.newFramer()
	var sample []byte
	var want [][]byte
	for i, snip := range []int{0, 29, 517, 0} {
		r := make([]byte, record.KernelRecordSize+snip)
		r[0] = byte(i + 1) // ts_ns, to tell them apart
		r[snippetLenOff], r[snippetLenOff+1] = byte(snip), byte(snip>>8)
		for j := record.KernelRecordSize; j < len(r); j++ {
			r[j] = byte(j)
		}
		want = append(want, r)
		sample = append(sample, r...)
	}
	f.add(sample)
	if f.b.Count() != len(want) {
		t.Fatalf("frame holds %d records, want %d", f.b.Count(), len(want))
	}
	_, samples, err := record.ParseFrame(f.b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(samples, sample) {
		t.Errorf("frame records differ from the sample's")
	}
	f.flush()
	if got := c.n.samplesRead.Load(); got != uint64(len(want)) {
		t.Errorf("samples_read %d, want %d (it counts records)", got, len(want))
	}
}

// TestStopDrainsStagedBatches: records still staged in the program's per-CPU batches when the
// capture stops must reach Kafka, and the kernel counters must then add up to what was sent:
// the drain has the batches written out (bpf.Objects.Flush) before its last read. The batch age
// is an hour here, so nothing but that flush can bring them out.
func TestStopDrainsStagedBatches(t *testing.T) {
	capture := filepath.Join(pcapDir, "tcpdump/dns_tcp.pcap") // 11 frames: one part-filled batch
	v := nettest.NewVethPair(t)
	k := startKafka(t)
	cfg := testConfig(k.Addr())
	cfg.Iface = v.Name
	var c *Collector
	if err := v.Do(func() (err error) { c, err = New(cfg, Dependencies{Logger: testLogger(t)}); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() }) // releases c.objs
	objs, err := bpf.Load(bpf.Config{RingBytes: cfg.RingBytes, BatchAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c.objs = objs
	rd, err := bpf.NewRing(objs.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var l link.Link
	if err := v.Do(func() (err error) { l, err = objs.AttachXDP(v.Index, bpf.XDPNative); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := c.newFramer()
	done := make(chan error, 1)
	go func() { done <- c.drain(rd, f) }()

	sent := nettest.Replay(t, v.PeerNS, v.PeerName, capture, 0)
	if staged, err := objs.Staged(); err != nil || staged != sent.Sent {
		t.Fatalf("%d records staged (%v), want all %d sent", staged, err, sent.Sent)
	}
	// What Stop does: detach, then wake the reader.
	c.stopping.Store(true)
	l.Close()
	if err := rd.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := objs.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(sent.Sent)
	if c.n.samplesRead.Load() != n || st[record.StatSeen] != n || st[record.StatEmitted] != n {
		t.Fatalf("sent %d: read %d; seen %d, emitted %d", n, c.n.samplesRead.Load(), st[record.StatSeen], st[record.StatEmitted])
	}
	cons := newConsumer(t, k.Addr(), cfg.Topic)
	recs := cons.until(10*time.Second, func(r []*kgo.Record) bool { return countRecords(r) >= sent.Sent })
	if got := countRecords(recs); got != sent.Sent {
		t.Fatalf("%d records in Kafka, %d packets sent", got, sent.Sent)
	}
}
