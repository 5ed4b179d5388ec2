package ingester

import (
	"bytes"
	"testing"
	"time"
)

// TestPoisonFrames: bad frames between good ones go to dead_letters whole, with where they came
// from and why; every good row still lands, once.
func TestPoisonFrames(t *testing.T) {
	topic, stats, group, db := names("poison")
	createTopic(t, topic, 2)
	createTopic(t, stats, 1)
	startIngester(t, testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP))
	cl := producer(t)
	conn := chConn(t, sharedCH.TCPAddr())

	s := newStream("host-p", 42)
	var values [][]byte
	var bad []int // indexes into values
	for i := range 60 {
		good := s.frame(300)
		values = append(values, good)
		if i%3 == 1 {
			bad = append(bad, len(values))
			values = append(values, poison(i, good))
		}
	}
	rs := produce(t, cl, topic, "host-p", values...)
	produce(t, cl, stats, "host-p", []byte("{not json"), statsMessage("host-p", 42, 1))

	waitRows(t, conn, db, s.sent(), time.Minute)
	got := readDeadLetters(t, conn, db, topic, len(bad)+1)
	if len(got) != len(bad) {
		t.Fatalf("dead_letters has %d frames of %s, want the %d poison frames", len(got), topic, len(bad))
	}
	for i, d := range got {
		r := rs[bad[i]]
		if d.Partition != r.Partition || d.Offset != r.Offset || !bytes.Equal([]byte(d.Raw), r.Value) || d.Error == "" {
			t.Errorf("dead letter %d: partition %d offset %d (%d raw bytes, error %q); want partition %d offset %d with the %d bytes produced",
				i, d.Partition, d.Offset, len(d.Raw), d.Error, r.Partition, r.Offset, len(r.Value))
		}
	}
	t.Logf("example: %s", got[0].Error)
	if n := queryCount(t, conn, "SELECT count() FROM "+db+".dead_letters WHERE topic = '"+stats+"' AND raw = '{not json'"); n != 1 {
		t.Errorf("bad stats message: %d dead letters, want 1", n)
	}
	if n := queryCount(t, conn, "SELECT count() FROM "+db+".collector_stats"); n != 1 {
		t.Errorf("collector_stats: %d rows, want the 1 good message", n)
	}
}
