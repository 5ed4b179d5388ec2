package bpf

import (
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
)

// TestCountersHonestTinyRing: a 4 KiB ring nobody reads fills after a few records; every packet
// after that must be counted as ring_full, so that seen == emitted + ring_full exactly, and
// parse errors are counted by reason.
func TestCountersHonestTinyRing(t *testing.T) {
	e := newEnv(t, Config{RingBytes: 4096, SampleMax: 1}) // sampling: sample_test.go
	var frames [][]byte
	reasons := map[string]uint64{}
	for _, c := range parseCases() {
		if c.xdpOnly {
			continue
		}
		frames = append(frames, c.frame)
		if c.want.ParseError != "" {
			reasons[c.want.ParseError]++
		}
	}
	const rounds = 40
	before := readStats(t, e)
	for range rounds {
		for _, f := range frames {
			if ret, err := e.o.TestRun(f); err != nil || ret != xdpPass {
				t.Fatalf("test run: %d, %v", ret, err)
			}
		}
	}
	d := statsDelta(t, e, before)
	n := uint64(rounds * len(frames))
	seen, emitted, full := d[record.StatSeen], d[record.StatEmitted], d[record.StatRingFull]
	t.Logf("%d packets: seen %d, emitted %d, ring_full %d, sampled_out %d", n, seen, emitted, full, d[record.StatSampledOut])
	if seen != n || emitted+full+d[record.StatSampledOut] != seen || full == 0 || emitted == 0 {
		t.Fatalf("counters do not add up: sent %d, seen %d, emitted %d, ring_full %d, sampled_out %d",
			n, seen, emitted, full, d[record.StatSampledOut])
	}
	if got := len(e.drain(t)); uint64(got) != emitted {
		t.Errorf("ring holds %d records, emitted says %d", got, emitted)
	}
	for code, name := range parseErrorCodes() {
		if got, want := d[record.StatParseErrorBase+int(code)], reasons[name]*rounds; got != want {
			t.Errorf("parse error %s counted %d times, want %d", name, got, want)
		}
	}
}

func parseErrorCodes() map[uint8]string {
	m := map[uint8]string{}
	for code := uint8(1); code < 64; code++ {
		if name := record.ParseErrorName(code); name[:min(8, len(name))] != "unknown_" {
			m[code] = name
		}
	}
	return m
}

// TestCountersHonestLive: the same invariant with live traffic through native XDP on a veth:
// seen equals the frames tcpreplay sent.
func TestCountersHonestLive(t *testing.T) {
	v := nettest.NewVethPair(t)
	e := newEnv(t, Config{RingBytes: 4096, SampleMax: 1}) // sampling: sample_test.go
	if err := v.Do(func() error {
		l, err := e.o.AttachXDP(v.Index, XDPNative)
		if err == nil {
			t.Cleanup(func() { l.Close() })
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	before := readStats(t, e)
	st := nettest.Replay(t, v.PeerNS, v.PeerName, pcapDir+"/ja4/tls-handshake.pcapng", 5000)
	d := statsDelta(t, e, before)
	seen, emitted, full := d[record.StatSeen], d[record.StatEmitted], d[record.StatRingFull]
	t.Logf("sent %d: seen %d, emitted %d, ring_full %d", st.Sent, seen, emitted, full)
	if seen != uint64(st.Sent) || emitted+full != seen || full == 0 {
		t.Fatalf("sent %d, seen %d, emitted %d, ring_full %d", st.Sent, seen, emitted, full)
	}
}
