package record

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// Fuzz targets of the JSON messages a collector writes and an ingester reads: the stats and
// the flow counters. Whatever bytes arrive (a foreign producer, a corrupt record), decoding must
// not panic, and what decodes must survive a round trip unchanged (the ingester stores what it
// decoded; the collector's own encoding is the contract).
//
//	go test -run '^$' -fuzz '^FuzzStatsMessage$' -fuzztime 60s ./record/
//	go test -run '^$' -fuzz '^FuzzFlowMessage$' -fuzztime 60s ./record/

func FuzzStatsMessage(f *testing.F) {
	s := Stats{Version: StatsVersion, Time: time.Date(2026, 12, 7, 1, 2, 3, 4, time.UTC), Host: "edge-1", Iface: "eth0",
		KernelSeen: 10, KernelEmitted: 9, KernelRingFull: 1, ProduceErrors: map[string]uint64{"timeout": 2}}
	b, err := s.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"host":"h","time":"2026-12-07T00:00:00Z","parse_errors":{"ipv4_truncated":1}}`))
	f.Add([]byte(`{"version":0}`))
	f.Add([]byte(`{"version":1,"host":"h","time":"9999-12-31T23:59:59.999999999+14:00","kernel_seen":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeStats(b)
		if err != nil {
			return
		}
		if s.Version < 1 || s.Host == "" || s.Time.IsZero() {
			t.Fatalf("DecodeStats accepted %q without version, host or time", b)
		}
		enc, err := s.Encode()
		if err != nil {
			return // a time JSON cannot write (year beyond 9999 after a zone shift): not a message a collector sends
		}
		again, err := DecodeStats(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if !reflect.DeepEqual(normStats(s), normStats(again)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", s, again)
		}
	})
}

// normStats makes times comparable (the zone is presentation only).
func normStats(s Stats) Stats {
	s.Time = s.Time.UTC()
	return s
}

func FuzzFlowMessage(f *testing.F) {
	m := FlowMessage{Version: FlowMessageVersion, Time: time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC), Host: "edge-1", Iface: "eth0",
		CollectorID: 7, ExportSeq: 3, Flows: []FlowRow{
			{IPVersion: 4, IPProto: 6, SrcAddr: netip.MustParseAddr("198.18.0.2"), DstAddr: netip.MustParseAddr("198.18.0.1"),
				SrcPort: 40000, DstPort: 443, Packets: 5, Bytes: 900, SYN: 1, ACK: 4, FirstSeenNs: 1, LastSeenNs: 2},
			{IPVersion: 6, IPProto: 58, SrcAddr: netip.MustParseAddr("2001:db8::1"), DstAddr: netip.MustParseAddr("2001:db8::2")},
			{SrcAddr: netip.IPv6Unspecified(), DstAddr: netip.IPv6Unspecified(), Packets: 1},
		}}
	b, err := json.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"flows":[{"src_addr":"","dst_addr":"::ffff:1.2.3.4"}]}`))
	f.Add([]byte(`{"version":1,"flows":[{"src_addr":"fe80::1%eth0","dst_addr":"1.2.3.4","packets":-1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m FlowMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return
		}
		enc, err := json.Marshal(m)
		if err != nil {
			return // a time JSON cannot write: not a message a collector sends
		}
		var again FlowMessage
		if err := json.Unmarshal(enc, &again); err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		m.Time, again.Time = m.Time.UTC(), again.Time.UTC()
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}
