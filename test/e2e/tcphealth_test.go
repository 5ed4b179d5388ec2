package e2e

import (
	"bufio"
	"bytes"
	"context"
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
	"github.com/packetlake/packetlake/internal/testkit/nettest"
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
		s := compareHealth(t, host, want[host], got[host], 0)
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
