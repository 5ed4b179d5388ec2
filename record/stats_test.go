package record

import (
	"strings"
	"testing"
	"time"
)

// statsV1 is a stats message exactly as the collector wrote it before Stats moved here
// (collector.Stats at c0c1f25, every field set): readers must keep taking it, and Encode must
// keep writing the same bytes.
const statsV1 = `{"version":1,"time":"2026-12-07T10:11:12.123456789Z","time_unix_ns":1796638272123456789,"host":"edge-1","iface":"eth0","collector_id":9223372036854775813,"mode":"xdp","clock_offset_ns":1765000000000000000,"kernel_seen":1000,"kernel_emitted":990,"kernel_ring_full":4,"kernel_sampled_out":6,"kernel_snippet_copy_failed":1,"kernel_flow_counted":1000,"kernel_flow_failed":2,"flow_exports":3,"flow_export_errors":1,"flow_rows_exported":40,"flow_packets_exported":990,"flow_bytes_exported":123456,"flows_retired":7,"flow_lost_packets":8,"flows_active":12,"kernel_parse_errors":{"not_ip":2,"truncated":3},"ring_pending_bytes":4096,"samples_read":985,"samples_malformed":1,"frames_produced":10,"frames_acked":9,"frames_shed":1,"records_produced":900,"records_acked":880,"records_shed":85,"records_failed":20,"produce_errors":{"record_timeout":1},"buffered_bytes":2048,"read_errors":0,"stats_failed":1}`

func TestStatsWireCompatible(t *testing.T) {
	s, err := DecodeStats([]byte(statsV1))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 10, 11, 12, 123456789, time.UTC)
	if s.Version != StatsVersion || !s.Time.Equal(at) || s.TimeUnixNs != at.UnixNano() || s.Host != "edge-1" ||
		s.Iface != "eth0" || s.CollectorID != 1<<63+5 || s.Mode != "xdp" {
		t.Errorf("header: %+v", s)
	}
	if s.KernelSeen != 1000 || s.FlowsActive != 12 || s.KernelParseErrors["truncated"] != 3 ||
		s.ProduceErrors["record_timeout"] != 1 || s.RecordsShed != 85 || s.StatsFailed != 1 {
		t.Errorf("counters: %+v", s)
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != statsV1 {
		t.Errorf("Encode changed the wire format:\n got %s\nwant %s", b, statsV1)
	}
}

// DecodeStats takes what a reader can key on and refuses the rest (the ingester dead-letters it).
func TestDecodeStats(t *testing.T) {
	for _, tc := range []struct {
		msg, err string
	}{
		{`{"version":1,"time":"2026-12-07T10:11:12Z","host":"h","iface":"eth0","collector_id":7,"kernel_seen":1000}`, ""},
		{`{"version":2,"time":"2026-12-07T10:11:12Z","host":"h","added_later":{"x":1}}`, ""},
		{`{not json`, "not JSON"},
		{`{"version":0,"time":"2026-12-07T10:11:12Z","host":"h"}`, "lacks"},
		{`{"version":1,"time":"2026-12-07T10:11:12Z"}`, "lacks"},
		{`{"version":1,"host":"h"}`, "lacks"},
	} {
		_, err := DecodeStats([]byte(tc.msg))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.msg, err, tc.err)
		}
	}
}
