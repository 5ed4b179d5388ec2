package collector

import (
	"sync/atomic"
	"testing"
	"time"
)

// With the broker gone, the drain keeps pace, frames beyond MaxBufferedBytes are shed and
// counted, the buffered bytes never pass the cap, and Stop returns within FlushTimeout.
func TestShedWhenKafkaDown(t *testing.T) {
	k := startKafka(t)
	cfg := testConfig(k.Addr())
	cfg.FrameMaxBytes = 4096
	cfg.FrameMaxAge = 20 * time.Millisecond
	cfg.MaxBufferedBytes = 128 << 10 // 28 frames of 4 KiB buffers: phase 1 sheds nothing on a loaded machine
	cfg.FlushTimeout = 2 * time.Second
	c := startLive(t, cfg)
	pkts, _ := capturePackets(t, "tcpdump/dns_udp.pcap")

	// The buffered gauge is watched all along: it must never pass the cap.
	var peak atomic.Int64
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			peak.Store(max(peak.Load(), c.n.buffered.Load()))
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	// Phase 1: broker up, everything is acknowledged.
	const up = 200
	inject(t, c, pkts, up)
	if !waitFor(10*time.Second, func() bool { return c.Stats().RecordsAcked == up }) {
		t.Fatalf("broker up: %+v, want %d acked", c.Stats(), up)
	}

	// Phase 2: broker down. The drain must not block: everything injected is read promptly.
	k.Stop()
	const down = 5000
	start := time.Now()
	inject(t, c, pkts, down)
	if !waitFor(5*time.Second, func() bool { return c.Stats().SamplesRead == up+down }) {
		t.Fatalf("drain blocked with the broker down: %+v", c.Stats())
	}
	t.Logf("drained %d records with the broker down in %v", down, time.Since(start))

	stopAt := time.Now()
	err := c.Stop()
	if took := time.Since(stopAt); took > cfg.FlushTimeout+recordAbortWait+3*time.Second {
		t.Errorf("Stop took %v with FlushTimeout %v", took, cfg.FlushTimeout)
	}
	if err == nil {
		t.Errorf("Stop reported no error though frames were never acknowledged")
	}
	close(stopWatch)
	<-watched

	s := c.Stats()
	t.Logf("stats after Stop: read %d produced %d acked %d shed %d (%d frames) failed %d errors %v peak buffered %d",
		s.SamplesRead, s.RecordsProduced, s.RecordsAcked, s.RecordsShed, s.FramesShed, s.RecordsFailed, s.ProduceErrors, peak.Load())
	if s.RecordsShed == 0 || s.FramesShed == 0 {
		t.Errorf("nothing shed with the broker down and a %d-byte cap", cfg.MaxBufferedBytes)
	}
	if p := peak.Load(); p > int64(cfg.MaxBufferedBytes) {
		t.Errorf("buffered bytes peaked at %d, above the cap %d", p, cfg.MaxBufferedBytes)
	}
	// Loss is counted, never silent: every record read is acked, shed or failed.
	if s.RecordsAcked+s.RecordsShed+s.RecordsFailed != s.SamplesRead {
		t.Errorf("acked %d + shed %d + failed %d != read %d", s.RecordsAcked, s.RecordsShed, s.RecordsFailed, s.SamplesRead)
	}
	if s.RecordsProduced != s.RecordsAcked+s.RecordsFailed {
		t.Errorf("produced %d != acked %d + failed %d", s.RecordsProduced, s.RecordsAcked, s.RecordsFailed)
	}
	var errs uint64
	for _, n := range s.ProduceErrors {
		errs += n
	}
	if errs == 0 || s.RecordsFailed == 0 {
		t.Errorf("frames left at Stop were not counted as produce errors: %v", s.ProduceErrors)
	}
	if s.BufferedBytes != 0 {
		t.Errorf("%d bytes still charged after Stop", s.BufferedBytes)
	}
}

// A broker that was never reachable: the collector starts, sheds, and stops cleanly.
func TestShedWhenKafkaNeverUp(t *testing.T) {
	cfg := testConfig(deadPort(t))
	cfg.FrameMaxBytes = 4096
	cfg.FrameMaxAge = 10 * time.Millisecond
	cfg.MaxBufferedBytes = 16 << 10
	cfg.FlushTimeout = time.Second
	c := startLive(t, cfg)
	pkts, _ := capturePackets(t, "tcpdump/dns_udp.pcap")
	inject(t, c, pkts, 2000)
	if !waitFor(5*time.Second, func() bool { return c.Stats().SamplesRead == 2000 }) {
		t.Fatalf("drain blocked: %+v", c.Stats())
	}
	c.Stop()
	s := c.Stats()
	if s.RecordsShed == 0 || s.RecordsAcked != 0 || s.RecordsShed+s.RecordsFailed != 2000 {
		t.Errorf("shed %d failed %d acked %d of 2000", s.RecordsShed, s.RecordsFailed, s.RecordsAcked)
	}
}
