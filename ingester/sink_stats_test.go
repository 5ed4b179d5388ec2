package ingester

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The stats sink keys each row on the message's header (record.DecodeStats) and keeps the
// message whole; a message it cannot key on is refused (and dead-lettered by the worker).
func TestStatsSinkRows(t *testing.T) {
	var s statsSink
	msg := statsMessage("host-s", 77, 3)
	if n, err := s.add(&kgo.Record{Value: msg, Offset: 12}); n != 1 || err != nil {
		t.Fatalf("add: %d, %v", n, err)
	}
	r := s.rows[0]
	if !r.h.Time.Equal(time.Unix(0, wallBase).Add(3*time.Second)) || r.h.Host != "host-s" || r.h.Iface != "eth0" ||
		r.h.CollectorID != 77 || r.offset != 12 || r.raw != string(msg) {
		t.Errorf("row: %+v", r)
	}
	if _, err := s.add(&kgo.Record{Value: []byte(`{"version":1,"iface":"eth0"}`)}); err == nil || s.len() != 1 {
		t.Errorf("a message without host or time: %v, %d rows", err, s.len())
	}
}
