package l7

import (
	"bytes"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// TestOracleDNSAnswerIPs compares the answer addresses read from every DNS response of the
// shared real captures with tshark's. tshark lists the A and AAAA values of all three sections
// in order; the answers are the first dns.count.answers records, so the expected addresses are
// the first k of dns.a and of dns.aaaa, k counted over the answer records' types (class IN).
func TestOracleDNSAnswerIPs(t *testing.T) {
	var captures []string
	for _, dir := range []string{"tcpdump", "ja4"} {
		m, _ := filepath.Glob(filepath.Join(pcapDir, dir, "*.pcap*"))
		captures = append(captures, m...)
	}
	fields := []string{"frame.number", "frame.protocols", "udp.srcport", "udp.dstport", "udp.payload",
		"tcp.srcport", "tcp.dstport", "tcp.payload", "dns.flags.response", "dns.count.answers",
		"dns.resp.type", "dns.resp.class", "dns.a", "dns.aaaa"}
	var responses, addrs, cut int
	for _, capture := range captures {
		for _, row := range tsharkAll(t, capture, fields) {
			f := map[string]string{}
			for i, name := range fields {
				f[name] = row[i]
			}
			if f["dns.flags.response"] != "1" || strings.Contains(f["frame.protocols"], "icmp") {
				continue
			}
			ports := f["udp.srcport"] + "," + f["udp.dstport"] + "," + f["tcp.srcport"] + "," + f["tcp.dstport"]
			if !slices.ContainsFunc(strings.Split(ports, ","), func(p string) bool { return p == "53" || p == "5353" || p == "5355" }) {
				continue
			}
			overTCP := f["tcp.srcport"] != ""
			full, err := hex.DecodeString(f["udp.payload"] + f["tcp.payload"])
			if err != nil {
				t.Fatal(err)
			}
			snip := full[:min(len(full), schema.SnippetHeadMax)]
			got := strings.Fields(string(AppendDNSAnswerIPs(nil, snip, overTCP)))
			want := expectedAnswers(t, f)
			where := filepath.Base(capture) + " frame " + f["frame.number"]
			responses++
			if len(full) > len(snip) {
				cut++ // answers past the snippet are not read: got must be the ones before
				if !isPrefixMultiset(got, want) {
					t.Errorf("%s (cut): got %v, tshark %v", where, got, want)
				}
				continue
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: answer addresses %v, tshark %v", where, got, want)
			}
			addrs += len(want)
		}
	}
	t.Logf("%d DNS responses, %d answer addresses equal to tshark's, %d responses cut by the snippet", responses, addrs, cut)
	if addrs < 30 {
		t.Errorf("only %d answer addresses compared, want at least 30 (the shared captures hold 33)", addrs)
	}
}

func expectedAnswers(t *testing.T, f map[string]string) []string {
	n, err := strconv.Atoi(f["dns.count.answers"])
	if err != nil {
		t.Fatalf("dns.count.answers %q", f["dns.count.answers"])
	}
	types, classes := splitAgg(f["dns.resp.type"]), splitAgg(f["dns.resp.class"])
	as, aaaas := splitAgg(f["dns.a"]), splitAgg(f["dns.aaaa"])
	var want []string
	var ia, iaaaa int
	for i := 0; i < n && i < len(types); i++ {
		in := i < len(classes) && classes[i] == "0x0001"
		switch types[i] {
		case "1":
			if in {
				want = append(want, as[ia])
			}
			ia++
		case "28":
			if in {
				want = append(want, aaaas[iaaaa])
			}
			iaaaa++
		}
	}
	return want
}

func isPrefixMultiset(got, want []string) bool {
	left := slices.Clone(want)
	for _, g := range got {
		i := slices.Index(left, g)
		if i < 0 {
			return false
		}
		left = slices.Delete(left, i, i+1)
	}
	return true
}

func splitAgg(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// tsharkAll is tsharkFields with every occurrence of a field, joined by commas.
func tsharkAll(t *testing.T, capture string, fields []string) [][]string {
	t.Helper()
	args := []string{"-n", "-r", capture, "-o", "tcp.desegment_tcp_streams:FALSE",
		"-T", "fields", "-E", "separator=" + tsharkSep, "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", capture, err, stderr.String())
	}
	var rows [][]string
	for line := range strings.Lines(stdout.String()) {
		row := strings.Split(strings.TrimSuffix(line, "\n"), tsharkSep)
		if len(row) != len(fields) {
			t.Fatalf("tshark -r %s: %d fields in %q, want %d", capture, len(row), line, len(fields))
		}
		rows = append(rows, row)
	}
	return rows
}

// TestDNSAnswerIPsBadInput: cut, looping and lying messages end the list, never panic.
func TestDNSAnswerIPsBadInput(t *testing.T) {
	// A response for a.example with two answers: A 192.0.2.1 then AAAA 2001:db8::1.
	msg := []byte{0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
		1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,
		0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1,
		0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	if got := string(AppendDNSAnswerIPs(nil, msg, false)); got != "192.0.2.1 2001:db8::1" {
		t.Fatalf("whole message: %q", got)
	}
	for i := range len(msg) {
		got := string(AppendDNSAnswerIPs(nil, msg[:i], false))
		want := ""
		if i >= 43 {
			want = "192.0.2.1"
		}
		if got != want {
			t.Errorf("cut at %d: %q, want %q", i, got, want)
		}
	}
	loop := slices.Clone(msg)
	loop[27], loop[28] = 0xc0, 27 // the first answer's name points at itself
	if got := AppendDNSAnswerIPs(nil, loop, false); len(got) != 0 {
		t.Errorf("pointer loop: %q", got)
	}
	query := slices.Clone(msg)
	query[2] &^= 0x80
	if got := AppendDNSAnswerIPs(nil, query, false); len(got) != 0 {
		t.Errorf("a query's records were read: %q", got)
	}
}

// BenchmarkDNSAnswerIPs: what reading the answers adds to a DNS response's parse (the
// ingester's only new per-row work for passive DNS), on the real responses of payloads.tsv.
func BenchmarkDNSAnswerIPs(b *testing.B) {
	p := payloads(b)
	for _, c := range []struct {
		name    string
		overTCP bool
	}{{"dns_response", false}, {"dns_tcp_response", true}} {
		in := p[c.name]
		if len(AppendDNSAnswerIPs(nil, in, c.overTCP)) == 0 {
			b.Fatalf("%s has no A/AAAA answer", c.name)
		}
		b.Run(c.name+"/header+question", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseDNS(in, c.overTCP); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/with_answers", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseDNS(in, c.overTCP); err != nil {
					b.Fatal(err)
				}
				var buf [256]byte // as record.ParseL7 does
				_ = string(AppendDNSAnswerIPs(buf[:0], in, c.overTCP))
			}
		})
	}
}
