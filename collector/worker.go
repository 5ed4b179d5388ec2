package collector

import (
	"errors"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/packetlake/packetlake/record"
)

// ageCheckEvery is how many samples the hot loop reads between clock reads: under load the ring
// never runs dry, so deadlines alone would not bound a frame's age.
const ageCheckEvery = 256

// framer packs samples into frames and hands full or old frames to the producer. It belongs to
// the one goroutine that reads the source; only its counters are shared, in batches.
type framer struct {
	b        record.FrameBuilder
	hdr      record.FrameHeader // CollectorID, Flags, Host, Iface; FirstSeq and ClockOffset per frame
	open     bool               // b holds a frame with at least one sample
	started  time.Time          // when the open frame got its first sample
	maxBytes int
	maxAge   time.Duration
	prod     *producer
	n        *counters

	// Live mode: the wall-clock offset, measured again every refresh (see clock.go).
	wallClock   bool // samples carry capture time: no offset (pcap replay)
	refresh     time.Duration
	lastClock   time.Time
	offsetStore func(int64)

	read, malformed uint64 // counted but not yet added to n
	sinceAge        int
}

// newFramer starts this run's frames: seq from 0, the run's identity in every header, and in
// pcap mode the wall-clock flag instead of a clock offset.
func (c *Collector) newFramer() *framer {
	f := &framer{
		hdr:         record.FrameHeader{CollectorID: c.id, Host: c.cfg.Host, Iface: c.iface},
		maxBytes:    c.cfg.FrameMaxBytes,
		maxAge:      c.cfg.FrameMaxAge,
		prod:        c.prod,
		n:           &c.n,
		refresh:     c.cfg.ClockRefresh,
		offsetStore: c.offset.Store,
	}
	if c.cfg.Pcap != "" {
		f.wallClock, f.hdr.Flags = true, record.FrameWallClock
	}
	return f
}

// add validates a ring sample and appends the pl_records it holds to the open frame: the program
// batches, so a sample is one or more records back to back (bpf.Config.BatchRecords), walked
// with record.SampleLen. A malformed tail (what follows the last whole pl_record) is counted once
// in samples_malformed and dropped: a bad record must never reach Kafka, where it would make the
// ingester refuse the frame. The whole records before it are kept; samples_read counts records.
func (f *framer) add(sample []byte) {
	for len(sample) > 0 {
		n, err := record.SampleLen(sample)
		if err != nil {
			f.malformed++
			return
		}
		if f.open && f.b.Len()+n > f.maxBytes {
			f.flush()
		}
		if !f.open {
			f.begin(time.Now())
		}
		f.b.Append(sample[:n])
		f.read++
		sample = sample[n:]
	}
	if f.sinceAge++; f.sinceAge >= ageCheckEvery {
		f.sinceAge = 0
		f.flushIfOld(time.Now())
	}
}

// begin starts a frame; seq continues from the previous frame, shed or not, so a gap in seq
// at the ingester is exactly the records shed or failed.
func (f *framer) begin(now time.Time) {
	if !f.wallClock && now.Sub(f.lastClock) >= f.refresh {
		if off, err := clockOffset(); err == nil {
			f.hdr.ClockOffset = off
			f.lastClock = now
			f.offsetStore(off)
		}
	}
	f.b.Reset(f.hdr)
	f.open, f.started = true, now
}

// flush hands the open frame to the producer.
func (f *framer) flush() {
	f.publish() // before produce: samples_read counts a record before records_produced does
	if f.open {
		f.prod.produce(f.b.Bytes(), f.b.Count())
		f.hdr.FirstSeq = f.b.NextSeq()
		f.open = false
	}
}

func (f *framer) flushIfOld(now time.Time) {
	if f.open && now.Sub(f.started) >= f.maxAge {
		f.flush()
	}
}

// publish adds the locally counted samples to the shared counters.
func (f *framer) publish() {
	if f.read > 0 {
		f.n.samplesRead.Add(f.read)
		f.read = 0
	}
	if f.malformed > 0 {
		f.n.samplesMalformed.Add(f.malformed)
		f.malformed = 0
	}
}

// deadline is when the reader must come back even if the kernel has not woken it: the program
// only wakes it past a fill threshold, so a quiet ring is found by polling every
// min(FrameMaxAge/2, maxPoll), and an open frame is flushed on time. Worst-case latency from
// capture to produce is FrameMaxAge plus one poll.
func (f *framer) deadline(now time.Time) time.Time {
	d := now.Add(min(f.maxAge/2, maxPoll))
	if f.open && f.started.Add(f.maxAge).Before(d) {
		return f.started.Add(f.maxAge)
	}
	return d
}

// maxPoll bounds the polling period when FrameMaxAge is long: records below the wake-up
// threshold must still be read soon, or size-based flushes would wait for the age.
const maxPoll = 50 * time.Millisecond

// drain is the live hot loop: ring buffer → frames → producer, until Stop flushes the reader.
// One Record is reused for every read, so steady state allocates only per frame.
func (c *Collector) drain(rd *ringbuf.Reader, f *framer) error {
	var rec ringbuf.Record
	rd.SetDeadline(f.deadline(time.Now()))
	for {
		err := rd.ReadInto(&rec)
		if err == nil {
			f.add(rec.RawSample)
			continue
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			now := time.Now()
			f.flushIfOld(now)
			f.publish()
			rd.SetDeadline(f.deadline(now))
		case errors.Is(err, ringbuf.ErrFlushed):
			// Stop detached the program, then flushed: everything in the ring has been read.
			// What the CPUs still hold in part-filled batches is forced out and read too.
			if c.stopping.Load() {
				c.drainStaged(rd, f)
				f.flush()
				return nil
			}
		case errors.Is(err, os.ErrClosed):
			f.flush()
			return nil
		default:
			c.n.readErrors.Add(1)
			f.flush()
			return err
		}
	}
}

// drainStaged writes out the batches the program still stages on each CPU (it is detached: no
// new ones start) and reads them, so Stop loses no record the kernel accepted and the final
// kernel counters add up (seen == emitted + ring_full + sampled_out).
func (c *Collector) drainStaged(rd *ringbuf.Reader, f *framer) {
	if err := c.objs.Flush(); err != nil {
		c.log.Warn("flush staged records", "err", err)
	}
	var rec ringbuf.Record
	rd.SetDeadline(time.Unix(1, 0)) // in the past: read what is there, do not wait
	for {
		err := rd.ReadInto(&rec)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				c.n.readErrors.Add(1)
				c.log.Warn("read staged records", "err", err)
			}
			return
		}
		f.add(rec.RawSample)
	}
}

// replay is the pcap-mode source: the capture through the program, then a last flush.
func (c *Collector) replay(f *framer) error {
	st, err := ReplayPcap(c.objs, c.cfg.Pcap, func(sample []byte, _ time.Time) error {
		if c.stopping.Load() {
			return errStopped
		}
		f.add(sample)
		return nil
	})
	f.flush()
	for _, d := range st.Damaged {
		c.log.Warn("damaged capture record skipped", "file", c.cfg.Pcap, "record", d.Record, "offset", d.Offset, "reason", d.Reason)
	}
	c.log.Info("capture replayed", "file", c.cfg.Pcap, "packets", st.Packets, "samples", st.Samples, "refused", st.Refused, "damaged", len(st.Damaged))
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

var errStopped = errors.New("collector stopping")
