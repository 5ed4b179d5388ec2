package ingester

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func flowMsg(t testing.TB, host string, id, seq uint64, flows int) ([]byte, uint64, uint64) {
	t.Helper()
	m := flowMessage{Version: 1, Time: time.Date(2026, 11, 22, 10, 0, int(seq), 0, time.UTC), Host: host, Iface: "eth0",
		CollectorID: id, ExportSeq: seq}
	var pk, by uint64
	for i := range flows {
		f := flowRow{Ifindex: 2, IPVersion: 4, IPProto: 6, SrcPort: uint16(1000 + i), DstPort: 443,
			SrcAddr: netip.AddrFrom4([4]byte{10, 0, byte(seq), byte(i)}), DstAddr: netip.MustParseAddr("192.0.2.1"),
			Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1)), SYN: 1, ACK: uint64(i),
			FirstSeenNs: m.Time.UnixNano() - 1e9, LastSeenNs: m.Time.UnixNano()}
		if i%5 == 0 { // a receiving process named (collect --receivers)
			f.RecvPID, f.RecvComm, f.RecvCgroupID = uint32(1000+i), "nginx", 4242
			f.RecvCgroup = "/kubepods.slice/kubepods-pod0d1f3c5e_7a9b_4c2d_8e6f_1a3b5c7d9e0f.slice/cri-containerd-" + strings.Repeat("ab", 32) + ".scope"
			f.RecvContainerID, f.RecvPodUID = strings.Repeat("ab", 32), "0d1f3c5e-7a9b-4c2d-8e6f-1a3b5c7d9e0f"
		}
		if i%7 == 3 {
			f.IPVersion, f.SrcAddr, f.DstAddr = 6, netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		}
		pk += f.Packets
		by += f.Bytes
		m.Flows = append(m.Flows, f)
	}
	b, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b, pk, by
}

// TestIngestFlows: flow messages (collector.FlowMessage) of two collectors land in flows, one row
// per flow delta, sums exact; a malformed message goes to dead_letters.
func TestIngestFlows(t *testing.T) {
	topic, stats, group, db := names("flows")
	flows := topic + "-flows"
	createTopic(t, topic, 1)
	createTopic(t, flows, 2)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterNative)
	cfg.StatsTopic, cfg.FlowsTopic = "", flows
	startIngester(t, cfg)

	cl := producer(t)
	var rows, pk, by uint64
	for c := range 2 {
		host := fmt.Sprintf("host-%d", c)
		for seq := range uint64(10) {
			b, p, y := flowMsg(t, host, uint64(100+c), seq, 50)
			produce(t, cl, flows, host, b)
			rows, pk, by = rows+50, pk+p, by+y
		}
	}
	produce(t, cl, flows, "bad", []byte(`{"version":1}`))
	conn := chConn(t, sharedCH.TCPAddr())
	deadline := time.Now().Add(time.Minute)
	for queryCount(t, conn, "SELECT count() FROM "+db+".flows") < rows && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if n := queryCount(t, conn, "SELECT count() FROM "+db+".flows"); n != rows {
		t.Fatalf("flows: %d rows, want %d", n, rows)
	}
	if got := queryCount(t, conn, "SELECT sum(packets) FROM "+db+".flows"); got != pk {
		t.Errorf("sum(packets) %d, want %d", got, pk)
	}
	if got := queryCount(t, conn, "SELECT sum(bytes) FROM "+db+".flows"); got != by {
		t.Errorf("sum(bytes) %d, want %d", got, by)
	}
	if got := queryCount(t, conn, "SELECT count() FROM "+db+".flows WHERE src_addr = toIPv6('::ffff:10.0.3.0') AND dst_addr = toIPv6('::ffff:192.0.2.1') AND collector_id = 100 AND export_seq = 3 AND first_seen < last_seen"); got != 1 {
		t.Errorf("IPv4 row as IPv4-mapped: found %d", got)
	}
	// 10 of the 50 flows of each of the 20 messages name a receiver, every column kept.
	if got := queryCount(t, conn, "SELECT count() FROM "+db+".flows WHERE recv_pid BETWEEN 1000 AND 1049 AND recv_comm = 'nginx' AND recv_cgroup_id = 4242 "+
		"AND recv_cgroup LIKE '/kubepods.slice/%.scope' AND recv_container_id = repeat('ab', 32) AND recv_pod_uid = '0d1f3c5e-7a9b-4c2d-8e6f-1a3b5c7d9e0f'"); got != 200 {
		t.Errorf("rows naming their receiver: %d, want 200", got)
	}
	if got := queryCount(t, conn, "SELECT count() FROM "+db+".flows WHERE recv_pid = 0 AND recv_comm = '' AND recv_cgroup = ''"); got != rows-200 {
		t.Errorf("rows naming none: %d, want %d", got, rows-200)
	}
	for time.Now().Before(deadline) && queryCount(t, conn, "SELECT count() FROM "+db+".dead_letters") < 1 {
		time.Sleep(200 * time.Millisecond)
	}
	if n := queryCount(t, conn, "SELECT count() FROM "+db+".dead_letters WHERE topic = '"+flows+"'"); n != 1 {
		t.Errorf("dead_letters: %d rows, want the one malformed flow message", n)
	}
}
