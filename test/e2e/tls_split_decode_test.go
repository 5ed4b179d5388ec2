package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
)

// TestDecodeSplitClientHellos: `packetlake decode` (the BPF program by BPF_PROG_TEST_RUN, then
// the L7 step with its state, as the ingester) on a capture of three ClientHellos over 2, 5 and
// 2 TCP segments (testdata/README.md): each hello's SNI, ALPN and JA4 equal tshark's reassembly
// (JA4 by FoxIO's recipe over tshark's fields), on the record of the segment tshark reassembles
// it in, and on no other. Then the same capture with damage: the segments of one hello swapped
// (the rest before the start: the kernel has no flow to follow yet) and a duplicate of another's
// last segment; the swapped hello must get no SNI or JA4 at all, rather than a wrong one, and the
// others stay right.
func TestDecodeSplitClientHellos(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const capture = "testdata/tls-split-hellos.pcap"
	type hello struct {
		sni, alpn, ja4 string
		sport          uint16
		lastSeq        uint32
		frames         []int // the frame numbers of its segments
	}
	var want []hello
	for _, f := range tsharkRows(t, capture, "tls.handshake.type == 1", "tls.handshake.extensions_server_name",
		"tls.handshake.extensions_alpn_str", "tls.handshake.version", "tls.handshake.extensions.supported_version",
		"tls.handshake.ciphersuite", "tls.handshake.extension.type", "tls.handshake.sig_hash_alg",
		"tls.handshake.sig_hash_alg_len", "tcp.srcport", "tcp.seq_raw", "tcp.segment") {
		sport, _ := strconv.Atoi(f[8])
		seq, _ := strconv.ParseUint(f[9], 10, 32)
		h := hello{sni: f[0], alpn: firstOf(f[1]), ja4: ja4FromTshark(t, f[0:8]), sport: uint16(sport), lastSeq: uint32(seq)}
		for _, n := range strings.Split(f[10], ",") {
			i, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("tshark segment list %q of %s", f[10], h.sni)
			}
			h.frames = append(h.frames, i)
		}
		want = append(want, h)
	}
	if len(want) != 3 || len(want[0].frames) != 2 || len(want[1].frames) != 5 || len(want[2].frames) != 2 {
		t.Fatalf("tshark: %+v, want hellos over 2, 5 and 2 segments", want)
	}

	decodeHellos := func(path string) map[uint16][]record.Packet {
		out, stderr, err := runDecode(ctx, path)
		if err != nil {
			t.Fatalf("decode %s: %v\n%s", path, err, stderr)
		}
		got := map[uint16][]record.Packet{}
		for i, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
			p := decodeJSONRecord(t, fmt.Sprintf("%s line %d", path, i+1), line)
			if p.TLSSNI != "" || p.TLSJA4 != "" || p.TLSALPN != "" {
				got[p.SrcPort] = append(got[p.SrcPort], p)
			}
		}
		return got
	}
	check := func(what string, got map[uint16][]record.Packet, h hello) {
		t.Helper()
		ps := got[h.sport]
		if len(ps) != 1 {
			t.Errorf("%s: %s: %d records with hello columns, want 1", what, h.sni, len(ps))
			return
		}
		p := ps[0]
		if p.TLSSNI != h.sni || p.TLSALPN != h.alpn || p.TLSJA4 != h.ja4 || p.TCPSeq != h.lastSeq || p.ParseError != "" {
			t.Errorf("%s: SNI %q ALPN %q JA4 %q on seq %d (error %q); tshark: %q %q %q on seq %d",
				what, p.TLSSNI, p.TLSALPN, p.TLSJA4, p.TCPSeq, p.ParseError, h.sni, h.alpn, h.ja4, h.lastSeq)
		}
	}
	got := decodeHellos(capture)
	for _, h := range want {
		check("as captured", got, h)
	}

	frames, lt, err := nettest.ReadPcap(capture)
	if err != nil {
		t.Fatal(err)
	}
	a, b := want[0].frames[0]-1, want[0].frames[1]-1
	frames[a], frames[b] = frames[b], frames[a] // the rest of the first hello before its start
	last := want[2].frames[1] - 1
	frames = append(frames[:last+1], frames[last:]...) // a copy of the third hello's last segment
	damaged := toEthernetPcap(t, "tls-split-damaged.pcap", frames, lt)
	got = decodeHellos(damaged)
	if ps := got[want[0].sport]; len(ps) != 0 {
		t.Errorf("swapped segments: %d records with hello columns (SNI %q JA4 %q), want none", len(ps), ps[0].TLSSNI, ps[0].TLSJA4)
	}
	check("with a duplicate segment", got, want[2])
	check("next to the damage", got, want[1])
}
