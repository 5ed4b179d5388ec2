package ingester

import (
	"fmt"
	"testing"
	"time"
)

// TestIngest: frames from three collectors over four partitions, and their stats messages,
// land once each with every column as the decoder reads it — for both writers.
func TestIngest(t *testing.T) {
	for _, writer := range []string{WriterArrowHTTP, WriterNative} {
		t.Run(writer, func(t *testing.T) {
			topic, stats, group, db := names("ingest")
			createTopic(t, topic, 4)
			createTopic(t, stats, 1)
			startIngester(t, testConfig(sharedCH, topic, stats, group, db, writer))

			const collectors, frames, perFrame = 3, 40, 500
			cl := producer(t)
			conn := chConn(t, sharedCH.TCPAddr())
			want := sent{}
			for c := range collectors {
				host, id := fmt.Sprintf("host-%d", c), uint64(1000+c)
				s := newStream(host, id)
				var fs [][]byte
				for range frames {
					fs = append(fs, s.frame(perFrame))
				}
				produce(t, cl, topic, host, fs...)
				want.add(s.sent())
				for i := range 5 {
					produce(t, cl, stats, host, statsMessage(host, id, i))
				}
				want := map[uint64]bool{0: true, frames*perFrame - 1: true}
				for seq := uint64(1); seq < frames*perFrame; seq += 397 {
					want[seq] = true
				}
				t.Cleanup(func() {
					if !t.Failed() {
						checkRows(t, conn, db, id, expectRows(t, fs, want))
					}
				})
			}
			waitRows(t, conn, db, want, time.Minute)
			deadline := time.Now().Add(30 * time.Second)
			for queryCount(t, conn, "SELECT count() FROM "+db+".collector_stats") < collectors*5 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if n := queryCount(t, conn, "SELECT count() FROM "+db+".collector_stats WHERE host LIKE 'host-%' AND iface = 'eth0' AND collector_id >= 1000 AND kernel_seen = 1000 * toUInt64(JSONExtractUInt(raw, 'records_acked') / 900)"); n != collectors*5 {
				t.Errorf("collector_stats: %d well-formed rows, want %d", n, collectors*5)
			}
			if n := queryCount(t, conn, "SELECT count() FROM "+db+".dead_letters"); n != 0 {
				t.Errorf("dead_letters: %d rows from good frames", n)
			}
		})
	}
}
