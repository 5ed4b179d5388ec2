package bpf

import (
	"errors"
	"os"
	"testing"
	"time"
)

// Ring.Next hands samples out without consuming them: a reader closed before Commit leaves them
// for the next reader, and Resume skips what a dead reader recorded as read.
func TestRingCommit(t *testing.T) {
	e := newEnv(t, Config{RingBytes: 1 << 20})
	for i := range 3 {
		if _, err := e.o.TestRun(udpFrameN(i)); err != nil {
			t.Fatal(err)
		}
	}
	next := func(rd *Ring) ([]byte, uint64) {
		t.Helper()
		rd.SetDeadline(time.Now())
		s, pos, err := rd.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		return append([]byte(nil), s...), pos
	}
	rd, err := NewRing(e.o.Events())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := next(rd)
	rd.Close()

	rd, err = NewRing(e.o.Events())
	if err != nil {
		t.Fatal(err)
	}
	again, pos := next(rd)
	if string(again) != string(first) {
		t.Fatal("a sample handed out but not committed was not handed out again")
	}
	rd.Commit(pos)
	second, pos2 := next(rd) // read, not committed: a reader that died after recording pos2
	rd.Close()

	rd, err = NewRing(e.o.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if s, _ := next(rd); string(s) != string(second) {
		t.Fatal("after a Commit, the next reader does not start at the next sample")
	}
	if err := rd.Resume(pos2); err != nil {
		t.Fatal(err)
	}
	third, _ := next(rd)
	if string(third) == string(second) || len(third) == 0 {
		t.Fatal("Resume did not skip the sample recorded as read")
	}
	if err := rd.Resume(pos); err == nil {
		t.Error("Resume went back to space already given to the kernel")
	}
	rd.SetDeadline(time.Now())
	if _, _, err := rd.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("empty ring: %v, want a deadline error", err)
	}
}

// udpFrameN is a small UDP frame numbered i (its source port), so samples differ.
func udpFrameN(i int) []byte {
	return cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.UDP}.build(udp{sport: uint16(1000 + i), dport: 9}.build(fill(20, 0x41))))
}
