package collector

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/record"
)

// Frames flush when the next sample would not fit, never later, and seq runs on across frames.
func TestFlushBySize(t *testing.T) {
	k := startKafka(t)
	cfg := testConfig(k.Addr())
	cfg.FrameMaxBytes = 4096
	cfg.FrameMaxAge = time.Hour // only size may flush before Stop
	c := startLive(t, cfg)
	pkts, _ := capturePackets(t, "tcpdump/dns_udp.pcap")
	const n = 300
	inject(t, c, pkts, n)

	// Full frames arrive without Stop: at most one frame's worth is still being built.
	cons := newConsumer(t, k.Addr(), cfg.Topic)
	recs := cons.until(10*time.Second, func(r []*kgo.Record) bool { return countRecords(r) >= n-4096/record.KernelRecordSize })
	if got := countRecords(recs); got < n-4096/record.KernelRecordSize {
		t.Fatalf("before Stop: %d records in Kafka, want at least %d (size flush missing?)", got, n-4096/record.KernelRecordSize)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	recs = cons.until(10*time.Second, func(r []*kgo.Record) bool { return countRecords(r) >= n })
	frames := decodeFrames(t, recs)

	total, seq := 0, uint64(0)
	for i, f := range frames {
		if f.size > cfg.FrameMaxBytes {
			t.Errorf("frame %d: %d bytes > FrameMaxBytes %d", i, f.size, cfg.FrameMaxBytes)
		}
		if i < len(frames)-1 && f.size+frames[i+1].firstLen <= cfg.FrameMaxBytes {
			t.Errorf("frame %d: %d bytes flushed early (the next %d-byte sample still fitted)", i, f.size, frames[i+1].firstLen)
		}
		if f.hdr.FirstSeq != seq {
			t.Errorf("frame %d: first seq %d, want %d (seq must continue across frames)", i, f.hdr.FirstSeq, seq)
		}
		if f.hdr.CollectorID != c.ID() || f.hdr.Host != "test-host" || f.hdr.Iface != "lo" {
			t.Errorf("frame %d header %+v", i, f.hdr)
		}
		if f.hdr.ClockOffset == 0 || f.hdr.Flags != 0 {
			t.Errorf("frame %d: live frame with clock offset %d flags %d", i, f.hdr.ClockOffset, f.hdr.Flags)
		}
		seq += uint64(f.hdr.Count)
		total += f.hdr.Count
	}
	if total != n || len(frames) < 5 {
		t.Fatalf("%d records in %d frames, want %d in several", total, len(frames), n)
	}
	// Live timestamps: monotonic + offset lands on the wall clock.
	if ts := time.Unix(0, frames[0].packets[0].TS); time.Since(ts) > time.Minute || time.Since(ts) < 0 {
		t.Errorf("first record ts %v is not now", ts)
	}
}

// A frame that never fills is flushed FrameMaxAge after its first sample, with no Stop.
func TestFlushByAge(t *testing.T) {
	k := startKafka(t)
	cfg := testConfig(k.Addr())
	cfg.FrameMaxAge = 1500 * time.Millisecond
	c := startLive(t, cfg)
	pkts, _ := capturePackets(t, "tcpdump/dns_udp.pcap")
	cons := newConsumer(t, k.Addr(), cfg.Topic)

	start := time.Now()
	inject(t, c, pkts, 3)
	// Nothing before the age (a few records stay far below the wake-up threshold and the size).
	if recs := cons.until(900*time.Millisecond, func(r []*kgo.Record) bool { return len(r) > 0 }); len(recs) > 0 {
		t.Fatalf("frame produced after %v, before FrameMaxAge %v", time.Since(start), cfg.FrameMaxAge)
	}
	recs := cons.until(5*time.Second, func(r []*kgo.Record) bool { return countRecords(r) >= 3 })
	took := time.Since(start)
	if got := countRecords(recs); got != 3 || len(recs) != 1 {
		t.Fatalf("got %d records in %d frames, want 3 in 1", got, len(recs))
	}
	// Worst case: the reader polls every FrameMaxAge/2 before the frame opens.
	if took > cfg.FrameMaxAge*2+time.Second {
		t.Errorf("frame arrived after %v, want about FrameMaxAge %v", took, cfg.FrameMaxAge)
	}
	t.Logf("3 records arrived %v after injection (FrameMaxAge %v)", took, cfg.FrameMaxAge)
}

// A ring sample that is not a whole pl_record is counted and dropped, never framed: a bad
// sample in Kafka would make the ingester refuse the whole frame.
func TestMalformedSamplesCounted(t *testing.T) {
	k := startKafka(t)
	c, err := New(testConfig(k.Addr()), Dependencies{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	f := c.newFramer()
	good := make([]byte, record.KernelRecordSize)
	badLen := make([]byte, record.KernelRecordSize)
	badLen[snippetLenOff] = 0xff // snippet_len 255 with no snippet behind it
	f.add(make([]byte, 50))
	f.add(badLen)
	f.add(append(append([]byte(nil), good...), 1, 2, 3)) // a good record, then a 3-byte tail
	f.flush()
	if got, want := c.n.samplesMalformed.Load(), uint64(3); got != want {
		t.Errorf("malformed %d, want %d", got, want)
	}
	if got := c.n.samplesRead.Load(); got != 1 {
		t.Errorf("read %d, want the 1 valid record", got)
	}
	if c.n.framesProduced.Load() != 1 || c.n.recordsProduced.Load() != 1 {
		t.Errorf("produced %d frames %d records, want 1 and 1", c.n.framesProduced.Load(), c.n.recordsProduced.Load())
	}
}
