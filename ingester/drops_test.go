package ingester

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/packetlake/packetlake/record"
)

func dropMsg(t testing.TB, run, seq uint64, rows ...record.DropRow) []byte {
	t.Helper()
	m := record.DropMessage{Version: record.DropMessageVersion, Time: time.Date(2026, 11, 22, 10, 0, int(seq), 0, time.UTC),
		Host: "edge-1", Iface: "eth0", CollectorID: 7, Run: run, ExportSeq: seq, Chunk: 1, Drops: rows}
	b, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIngestDrops: kernel drop messages land in drops, one row per (reason, flow) delta with the
// sums exact; a message produced again after it was stored (the collector's resend of a copy
// that had landed), read by another ingester, is stored once, found by its identity in the table; a malformed message goes
// to dead_letters and is counted.
func TestIngestDrops(t *testing.T) {
	topic, stats, group, db := names("drops")
	drops := topic + "-drops"
	createTopic(t, topic, 1)
	createTopic(t, drops, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterNative)
	cfg.StatsTopic, cfg.FlowsTopic, cfg.DropsTopic = "", "", drops
	ing := startIngester(t, cfg)

	a4, b4 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("198.51.100.1")
	none := netip.IPv6Unspecified()
	first := dropMsg(t, 11, 1,
		record.DropRow{Observed: true, Reason: "NO_SOCKET", Ifindex: 2, IPVersion: 4, IPProto: 17, SrcAddr: a4, DstAddr: b4, SrcPort: 5000, DstPort: 9, Packets: 40, Bytes: 5680},
		record.DropRow{Observed: true, Reason: "NETFILTER_DROP", Ifindex: 2, IPVersion: 6, IPProto: 6, SrcAddr: netip.MustParseAddr("2001:db8::1"), DstAddr: netip.MustParseAddr("2001:db8::2"), SrcPort: 1, DstPort: 22, Packets: 3, Bytes: 222},
		record.DropRow{Reason: "NO_SOCKET", SrcAddr: none, DstAddr: none, Packets: 5, Bytes: 500})
	cl := producer(t)
	conn := chConn(t, sharedCH.TCPAddr())
	produce(t, cl, drops, "edge-1", first)
	waitCount(t, conn, "SELECT count() FROM "+db+".drops", 3, time.Minute)
	// A new ingester (which remembers nothing), then the same message again and a new one after
	// it: once the new one is stored, the repeat was handled (one partition, in order), found
	// stored by looking its identity up in the table.
	ing.Stop()
	ing = startIngester(t, cfg)
	produce(t, cl, drops, "edge-1", first, []byte(`{"version":1,"host":"edge-1"}`),
		dropMsg(t, 11, 2, record.DropRow{Observed: true, Reason: "NO_SOCKET", Ifindex: 2, IPVersion: 4, IPProto: 17, SrcAddr: a4, DstAddr: b4, SrcPort: 5000, DstPort: 9, Packets: 2, Bytes: 284}))
	waitCount(t, conn, "SELECT count() FROM "+db+".drops WHERE export_seq = 2", 1, time.Minute)

	if n := queryCount(t, conn, "SELECT count() FROM "+db+".drops"); n != 4 {
		t.Errorf("drops: %d rows, want 4 (the repeated message stored once)", n)
	}
	for q, want := range map[string]uint64{
		"SELECT sum(packets) FROM " + db + ".drops WHERE observed = 1 AND reason = 'NO_SOCKET' AND src_addr = toIPv6('::ffff:192.0.2.7') AND dst_port = 9": 42,
		"SELECT sum(bytes) FROM " + db + ".drops WHERE observed = 1 AND reason = 'NO_SOCKET'":                                                              5964,
		"SELECT sum(packets) FROM " + db + ".drops WHERE observed = 1 AND reason = 'NETFILTER_DROP' AND src_addr = toIPv6('2001:db8::1')":                  3,
		"SELECT sum(packets) FROM " + db + ".drops WHERE observed = 0":                                                                                     5,
	} {
		if got := queryCount(t, conn, q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}
	if got := testutilCounter(ing.metrics.dropDuplicates); got != 1 {
		t.Errorf("drop_messages_duplicate_total %v, want 1", got)
	}
	if dl := readDeadLetters(t, conn, db, drops, 1); len(dl) != 1 {
		t.Errorf("dead_letters: %d rows of %s, want the malformed drop message", len(dl), drops)
	}
}
