package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/detector"
	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/query"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
	"github.com/packetlake/packetlake/test/analytics"
)

// The TCP health reports against tshark on the shared captures. packetlake records what
// arrives at an interface, one direction of each connection, and analyses each direction from
// its own segments; so the oracle is tshark's analysis of each direction alone: the TCP
// frames of every capture are split in two (per connection, the side whose address:port sorts
// first, and the other) as the BPF program (`packetlake decode`) reads them, each half is
// written out for tshark and its records go into ClickHouse, and the report's row of every
// flow direction must equal tshark's counts exactly, the handshake RTT to the microsecond (both
// read the same capture's timestamps). The frames that tshark dissects but packetlake records
// with a parse error (oracleMalformed) are left out of both.
func TestTCPHealthCapturesMatchTshark(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	db := env.Database(t)
	if err := schema.Migrate(ctx, env.CH(t), db); err != nil {
		t.Fatal(err)
	}
	ch, err := analytics.NewCH(env.CHConfig(db))
	if err != nil {
		t.Fatal(err)
	}

	// Every frame of every capture, as Ethernet, in one file: one decode (loading the program
	// is the slow part); record i is origin[i].
	type origin struct {
		name  string
		frame int // 1-based
	}
	var origins []origin
	merged := filepath.Join(dir, "all.pcap")
	f, err := os.Create(merged)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, name := range sharedCaptures(t) {
		frames, lt, err := nettest.ReadPcap(filepath.Join(sharedPcaps, name))
		if err != nil {
			t.Fatal(err)
		}
		for i, fr := range frames {
			eth, ok := nettest.ToEthernet(lt, fr.Data)
			if !ok {
				t.Fatalf("%s frame %d: link type %s", name, i+1, lt)
			}
			ci := gopacket.CaptureInfo{Timestamp: fr.Time, CaptureLength: len(eth), Length: fr.WireLen + len(eth) - len(fr.Data)}
			if err := w.WritePacket(ci, eth); err != nil {
				t.Fatal(err)
			}
			origins = append(origins, origin{name, i + 1})
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	type half struct {
		name   string
		side   int
		frames []int
	}
	halves := map[string]*half{}
	var recs []record.Packet
	for _, p := range decodeFile(t, merged) {
		o := origins[p.Seq]
		if p.IPProto != 6 || oracleMalformedFrame(o.name, o.frame) {
			continue
		}
		side := 0
		if c := p.Src().Compare(p.Dst()); c > 0 || (c == 0 && p.SrcPort > p.DstPort) {
			side = 1
		}
		p.Host = fmt.Sprintf("%s#%d", o.name, side)
		if halves[p.Host] == nil {
			halves[p.Host] = &half{name: o.name, side: side}
		}
		halves[p.Host].frames = append(halves[p.Host].frames, o.frame)
		recs = append(recs, p)
	}
	if err := ch.InsertPackets(ctx, recs, ""); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[flowDir]*health{}
	for host, h := range halves {
		path := filepath.Join(dir, fmt.Sprintf("%s-%d.pcap", strings.ReplaceAll(h.name, "/", "_"), h.side))
		writeFrames(t, filepath.Join(sharedPcaps, h.name), path, h.frames)
		want[host] = tsharkHealth(t, ctx, path, nil)
	}
	got := reportHealth(t, ctx, db, time.Unix(0, 0), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	var tot health
	hosts := make([]string, 0, len(want))
	for h := range want {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, host := range hosts {
		s := compareHealth(t, host, want[host], got[host], 0, nil)
		tot.Retrans += s.Retrans
		tot.DupAcks += s.DupAcks
		tot.ResetsAfterData += s.ResetsAfterData
		tot.RTTMicros += s.RTTMicros
		delete(got, host)
	}
	for host := range got {
		t.Errorf("report rows for %s, which no capture half is", host)
	}
	t.Logf("%d capture halves; tshark's totals: %s (rtt_us = handshakes)", len(hosts), tot.counts())
	// What the shared captures hold (ja4/v6.pcap: 2 retransmissions, 2 duplicate ACKs; RSTs
	// after data in https3-301-get and tcp_rst_data; handshakes in most): the comparison above
	// is only worth something if the oracle found them.
	if tot.Retrans == 0 || tot.DupAcks == 0 || tot.RTTMicros == 0 {
		t.Errorf("tshark found no retransmission, duplicate ACK or handshake in the shared captures: the comparison proves little")
	}
}

// writeFrames copies the given frames (1-based) of src into a new capture dst, timestamps and
// link type kept.
// oracleMalformedFrame says whether frame n of capture name is one of oracleMalformed.
func oracleMalformedFrame(name string, n int) bool {
	_, ok := oracleMalformed[fmt.Sprintf("%s#%d", name, n)]
	return ok
}

func writeFrames(t *testing.T, src, dst string, frames []int) {
	t.Helper()
	all, lt, err := nettest.ReadPcap(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(262144, lt); err != nil {
		t.Fatal(err)
	}
	for _, n := range frames {
		fr := all[n-1]
		ci := gopacket.CaptureInfo{Timestamp: fr.Time, CaptureLength: len(fr.Data), Length: fr.WireLen}
		if err := w.WritePacket(ci, fr.Data); err != nil {
			t.Fatal(err)
		}
	}
}

// decodeFile runs a capture through the BPF program as `packetlake decode` does.
func decodeFile(t *testing.T, path string) []record.Packet {
	t.Helper()
	var buf bytes.Buffer
	if _, err := collector.DecodeCapture(path, &buf); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var out []record.Packet
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		p, err := analytics.ParseDecodeJSON(sc.Bytes())
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		out = append(out, p)
	}
	return out
}

// The segments block is the same text in every file that analyses TCP health: the two reports
// and the detector. The live and capture tests run the flows report; this keeps the others
// computing the very same flags.
func TestTCPHealthSegmentsBlockShared(t *testing.T) {
	block := func(name, sql string) string {
		start := strings.Index(sql, "-- The segments block")
		end := strings.Index(sql, "\n,\n-- Per flow direction")
		if start < 0 || end < start {
			t.Fatalf("%s: no segments block followed by the flow block", name)
		}
		flow := sql[end:]
		return sql[start:end] + flow[:strings.Index(flow, "\n)\n")]
	}
	flows, err := query.ReportByName("tcp_health_flows")
	if err != nil {
		t.Fatal(err)
	}
	services, err := query.ReportByName("tcp_health")
	if err != nil {
		t.Fatal(err)
	}
	det, err := detector.SQL(detector.TCPHealth)
	if err != nil {
		t.Fatal(err)
	}
	want := block("tcp_health_flows", flows.SQL)
	for name, sql := range map[string]string{"report tcp_health": services.SQL, "detector tcp_health": det} {
		if got := block(name, sql); got != want {
			t.Errorf("%s: the segments and flow blocks differ from tcp_health_flows':\n%s", name, got)
		}
	}
}

// A flow direction that lost records to adaptive sampling is never reported as healthy: the
// flows report says it was sampled and gives no counts, the service report leaves it out of
// every count and counts it in flows_sampled. The records are real (ja4/v6.pcap through the
// BPF program); the sampled copy keeps what the kernel keeps at rate 2 (pl_sample_keep: every
// SYN, FIN and RST, every other ordinary segment with sample_rate 2).
func TestTCPHealthSampledFlowsSaySo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	db := env.Database(t)
	if err := schema.Migrate(ctx, env.CH(t), db); err != nil {
		t.Fatal(err)
	}
	ch, err := analytics.NewCH(env.CHConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	var whole, sampled []record.Packet
	skip := 0
	for _, p := range decodeFile(t, filepath.Join(sharedPcaps, "ja4/v6.pcap")) {
		if p.IPProto != 6 {
			continue
		}
		p.Host = "whole"
		whole = append(whole, p)
		p.Host = "sampled"
		if p.TCPFlags&0x07 == 0 {
			if skip++; skip%2 == 1 {
				continue
			}
			p.SampleRate = 2
		}
		sampled = append(sampled, p)
	}
	if err := ch.InsertPackets(ctx, append(whole, sampled...), ""); err != nil {
		t.Fatal(err)
	}
	client, err := env.CHConfig(db).Client(chconn.Timeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	params := map[string]string{"since": "1970-01-01 00:00:00", "until": "2100-01-01 00:00:00", "limit": "1000"}
	rows := func(report string) []map[string]json.RawMessage {
		rep, err := query.ReportByName(report)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]json.RawMessage
		if err := client.Rows(ctx, rep.SQL, params, func(r map[string]json.RawMessage) error { out = append(out, r); return nil }); err != nil {
			t.Fatalf("%s: %v", report, err)
		}
		return out
	}
	var sampledRows, nullCounts, wholeRetrans int
	for _, r := range rows("tcp_health_flows") {
		host, recorded := string(r["host"]), string(r["recorded"])
		switch {
		case host == `"sampled"` && strings.HasPrefix(recorded, `"sampled (up to 1 in 2)`):
			sampledRows++
			if string(r["retransmissions"]) == "null" && string(r["duplicate_acks"]) == "null" && string(r["handshake_rtt_ms"]) == "null" {
				nullCounts++
			}
		case host == `"sampled"`:
			// a direction of only SYN/FIN/RST segments lost nothing: it stays whole
			if recorded != `"every segment"` {
				t.Errorf("sampled copy: recorded %s", recorded)
			}
		default:
			var n int
			json.Unmarshal(r["retransmissions"], &n)
			wholeRetrans += n
		}
	}
	if sampledRows == 0 || nullCounts != sampledRows {
		t.Errorf("flows report: %d sampled flow directions, %d of them without counts; want some, all without", sampledRows, nullCounts)
	}
	if wholeRetrans == 0 {
		t.Errorf("flows report: the whole copy of v6.pcap shows no retransmission (tshark finds 2)")
	}
	var flowsSampled, serviceRetrans int
	for _, r := range rows("tcp_health") {
		var fs, re int
		json.Unmarshal(r["flows_sampled"], &fs)
		json.Unmarshal(r["retransmissions"], &re)
		flowsSampled += fs
		serviceRetrans += re
	}
	if flowsSampled != sampledRows || serviceRetrans != wholeRetrans {
		t.Errorf("service report: flows_sampled %d, retransmissions %d; want %d (the sampled directions) and %d (the whole copy's alone)",
			flowsSampled, serviceRetrans, sampledRows, wholeRetrans)
	}
}
