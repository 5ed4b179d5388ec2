package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/query"
)

// flowDir is one direction of a TCP connection, as both the oracle and the reports name it.
type flowDir struct {
	Src     netip.Addr
	SrcPort uint16
	Dst     netip.Addr
	DstPort uint16
}

func (f flowDir) String() string {
	return fmt.Sprintf("%s", netip.AddrPortFrom(f.Src, f.SrcPort)) + " > " + netip.AddrPortFrom(f.Dst, f.DstPort).String()
}

// health is one flow direction's TCP health: tshark's analysis flags counted, RSTs after
// payload, and the handshake RTT in microseconds (-1: no handshake seen).
type health struct {
	Retrans, OutOfOrder, DupAcks, ZeroWindows, ResetsAfterData int
	RTTMicros                                                  int64
	Frames                                                     []int // the capture's frames of the direction (oracle only)
	DataSegments, LateData                                     int   // segments with payload, and those of them flagged retransmission or out-of-order (oracle only)
	Segments                                                   int   // segments of the direction
	MaxWindow                                                  int   // the largest window advertised, unscaled (oracle only)
	ClosedWindows                                              int   // zero windows of directions that advertised an open one too (oracle only)
}

func (h health) counts() string {
	return fmt.Sprintf("segments=%d retrans=%d ooo=%d dupack=%d zerowin=%d rst_after_data=%d rtt_us=%d",
		h.Segments, h.Retrans, h.OutOfOrder, h.DupAcks, h.ZeroWindows, h.ResetsAfterData, h.RTTMicros)
}

// tsharkHealth is the oracle: tshark's own TCP analysis of pcap, counted per flow direction.
// The addresses are tshark's Source/Destination columns, the innermost IP header's as
// packetlake records them. Frames listed in skip (1-based) are left out.
func tsharkHealth(t *testing.T, ctx context.Context, pcap string, skip map[int]bool) map[flowDir]*health {
	t.Helper()
	fields := []string{"frame.number", "_ws.col.Source", "_ws.col.Destination", "tcp.srcport", "tcp.dstport",
		"tcp.len", "tcp.flags.reset", "tcp.analysis.retransmission", "tcp.analysis.out_of_order",
		"tcp.analysis.duplicate_ack", "tcp.analysis.zero_window", "tcp.analysis.initial_rtt", "tcp.window_size_value"}
	args := []string{"-n", "-r", pcap, "-Y", "tcp", "-T", "fields", "-E", "occurrence=l"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.CommandContext(ctx, "tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", pcap, err)
	}
	flows := map[flowDir]*health{}
	data := map[flowDir]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) != len(fields) {
			t.Fatalf("tshark %s: line %q has %d fields, want %d", pcap, sc.Text(), len(c), len(fields))
		}
		frame, _ := strconv.Atoi(c[0])
		if skip[frame] {
			continue
		}
		src, err1 := netip.ParseAddr(c[1])
		dst, err2 := netip.ParseAddr(c[2])
		sp, err3 := strconv.ParseUint(c[3], 10, 16)
		dp, err4 := strconv.ParseUint(c[4], 10, 16)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			t.Fatalf("tshark %s frame %d: cannot read %q", pcap, frame, sc.Text())
		}
		k := flowDir{src, uint16(sp), dst, uint16(dp)}
		h := flows[k]
		if h == nil {
			h = &health{RTTMicros: -1}
			flows[k] = h
		}
		h.Frames = append(h.Frames, frame)
		h.Segments++
		on := func(s string) int {
			if s == "" || s == "0" || s == "False" {
				return 0
			}
			return 1
		}
		h.Retrans += on(c[7])
		h.OutOfOrder += on(c[8])
		h.DupAcks += on(c[9])
		h.ZeroWindows += on(c[10])
		if on(c[6]) == 1 && data[k] > 0 {
			h.ResetsAfterData++
		}
		n, _ := strconv.Atoi(c[5])
		data[k] += n
		if w, _ := strconv.Atoi(c[12]); w > h.MaxWindow {
			h.MaxWindow = w
		}
		if n > 0 {
			h.DataSegments++
			if on(c[7]) == 1 || on(c[8]) == 1 {
				h.LateData++
			}
		}
		if c[11] != "" {
			s, err := strconv.ParseFloat(c[11], 64)
			if err != nil {
				t.Fatalf("tshark %s frame %d: initial_rtt %q", pcap, frame, c[11])
			}
			h.RTTMicros = int64(math.Round(s * 1e6))
		}
	}
	return flows
}

// reportHealth runs the tcp_health_flows report over [since, until) of db and returns its
// rows by host and flow direction, with the column recorded of each.
func reportHealth(t *testing.T, ctx context.Context, db string, since, until time.Time) map[string]map[flowDir]*health {
	t.Helper()
	rep, err := query.ReportByName("tcp_health_flows")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[flowDir]*health{}
	err = tcpHealthRows(ctx, db, rep.SQL, since, until, map[string]string{"limit": "1000000"}, func(r map[string]json.RawMessage) error {
		var (
			host, src, dst, recorded string
			sp, dp                   uint16
			h                        health
			rtt                      *float64
		)
		if err := decodeRow(r, map[string]any{"host": &host, "source": &src, "destination": &dst, "recorded": &recorded,
			"src_port": &sp, "dst_port": &dp, "retransmissions": &h.Retrans, "out_of_order": &h.OutOfOrder,
			"duplicate_acks": &h.DupAcks, "zero_windows": &h.ZeroWindows, "resets_after_data": &h.ResetsAfterData,
			"handshake_rtt_ms": &rtt, "segments": &h.Segments}); err != nil {
			return err
		}
		if recorded != "every segment" {
			return fmt.Errorf("flow %s %s:%d > %s:%d: recorded %q: the test's traffic must be recorded whole", host, src, sp, dst, dp, recorded)
		}
		h.RTTMicros = -1
		if rtt != nil {
			h.RTTMicros = int64(math.Round(*rtt * 1000))
		}
		k := flowDir{netip.MustParseAddr(src), sp, netip.MustParseAddr(dst), dp}
		if out[host] == nil {
			out[host] = map[flowDir]*health{}
		}
		out[host][k] = &h
		return nil
	})
	if err != nil {
		t.Fatalf("tcp_health_flows: %v", err)
	}
	return out
}

// tcpHealthRows runs sql (the tcp_health_flows report, or a query on its segments block) over
// [since, until) of db with the extra parameters, and hands fn each row.
func tcpHealthRows(ctx context.Context, db, sql string, since, until time.Time, extra map[string]string, fn func(map[string]json.RawMessage) error) error {
	client, err := env.CHConfig(db).Client(chconn.Timeout(2 * time.Minute))
	if err != nil {
		return err
	}
	defer client.Close()
	params := map[string]string{
		"since": since.UTC().Format("2006-01-02 15:04:05.000000000"),
		"until": until.UTC().Format("2006-01-02 15:04:05.000000000"),
	}
	maps.Copy(params, extra)
	return client.Rows(ctx, sql, params, fn)
}

// decodeRow decodes the named columns of r into their pointers.
func decodeRow(r map[string]json.RawMessage, cols map[string]any) error {
	for k, v := range cols {
		if err := json.Unmarshal(r[k], v); err != nil {
			return fmt.Errorf("column %s = %s: %w", k, r[k], err)
		}
	}
	return nil
}

// compareHealth checks packetlake's rows against the oracle's, flow direction by flow direction.
// rttSlack is how far the handshake RTTs may differ, in microseconds: 0 when both read the same
// capture's timestamps. borderline (nil when both read the same timestamps) holds, per flow
// direction, how many late segments came so close to the out-of-order threshold that the two
// clocks may class them differently: that many may move between retransmission and
// out-of-order, their sum must still be equal. It returns the oracle's totals.
func compareHealth(t *testing.T, where string, want, got map[flowDir]*health, rttSlack int64, borderline map[flowDir]int) (tot health) {
	t.Helper()
	keys := make([]flowDir, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		w := want[k]
		tot.Segments += w.Segments
		tot.Retrans += w.Retrans
		tot.OutOfOrder += w.OutOfOrder
		tot.DupAcks += w.DupAcks
		tot.ZeroWindows += w.ZeroWindows
		tot.ResetsAfterData += w.ResetsAfterData
		if w.RTTMicros >= 0 {
			tot.RTTMicros++ // handshakes
		}
		g := got[k]
		if g == nil {
			t.Errorf("%s %s: tshark has %d frames (%s), the report no row", where, k, len(w.Frames), w.counts())
			continue
		}
		rttOK := (w.RTTMicros < 0) == (g.RTTMicros < 0) && abs64(w.RTTMicros-g.RTTMicros) <= rttSlack
		moved := abs64(int64(w.Retrans - g.Retrans))
		lateOK := w.Retrans+w.OutOfOrder == g.Retrans+g.OutOfOrder && moved <= int64(borderline[k])
		if w.Segments != g.Segments || !lateOK || w.DupAcks != g.DupAcks ||
			w.ZeroWindows != g.ZeroWindows || w.ResetsAfterData != g.ResetsAfterData || !rttOK {
			t.Errorf("%s %s:\n tshark     %s\n packetlake %s\n (late segments at the out-of-order threshold, which may be classed either way: %d)",
				where, k, w.counts(), g.counts(), borderline[k])
		} else if moved > 0 {
			t.Logf("%s %s: %d of %d late segments at the out-of-order threshold classed differently by the two clocks (tshark retrans=%d ooo=%d, packetlake %d/%d)",
				where, k, moved, borderline[k], w.Retrans, w.OutOfOrder, g.Retrans, g.OutOfOrder)
		}
	}
	var worst int64
	for k, w := range want {
		if g := got[k]; g != nil && w.RTTMicros >= 0 && g.RTTMicros >= 0 {
			worst = max(worst, abs64(w.RTTMicros-g.RTTMicros))
		}
	}
	if tot.RTTMicros > 0 {
		t.Logf("%s: handshake RTTs differ from tshark's by at most %d µs", where, worst)
	}
	for k := range got {
		if want[k] == nil {
			t.Errorf("%s %s: a report row (%s) tshark has no frame of", where, k, got[k].counts())
		}
	}
	return tot
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
