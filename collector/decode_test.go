package collector

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/schema"
)

// decode of a DNS capture prints one JSON object per packet, keys in schema order, with the DNS
// names tshark finds.
func TestDecodeDNS(t *testing.T) {
	path := filepath.Join(pcapDir, "tcpdump/dns_udp.pcap")
	var out bytes.Buffer
	st, err := DecodeCapture(path, &out)
	if err != nil {
		t.Fatal(err)
	}
	pkts, times := capturePackets(t, "tcpdump/dns_udp.pcap")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(pkts) || st.Packets != len(pkts) {
		t.Fatalf("%d lines for %d packets (replay %+v)", len(lines), len(pkts), st)
	}
	tshark, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "dns.qry.name").Output()
	if err != nil {
		t.Fatalf("tshark (Debian package tshark) is needed to check names: %v", err)
	}
	want := strings.Split(strings.TrimSuffix(string(tshark), "\n"), "\n")
	for i, line := range lines {
		if keys := jsonKeys(t, line); strings.Join(keys, ",") != strings.Join(columnNames(), ",") {
			t.Fatalf("line %d keys %v, want schema order", i, keys)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
		}
		if obj["dns_qname"] != want[i] {
			t.Errorf("packet %d: dns_qname %q, tshark %q", i, obj["dns_qname"], want[i])
		}
		ts, err := time.Parse(time.RFC3339Nano, obj["ts"].(string))
		if err != nil || !ts.Equal(times[i]) {
			t.Errorf("packet %d: ts %v (%v), capture %v", i, obj["ts"], err, times[i])
		}
		if _, ok := obj["src_port"].(float64); !ok {
			t.Errorf("packet %d: src_port %v is not a number", i, obj["src_port"])
		}
		if mac, _ := obj["src_mac"].(string); len(mac) != 17 || strings.Count(mac, ":") != 5 {
			t.Errorf("packet %d: src_mac %q", i, obj["src_mac"])
		}
		if a, _ := obj["src_addr"].(string); strings.Contains(a, "::ffff:") || strings.Count(a, ".") != 3 {
			t.Errorf("packet %d: IPv4 src_addr %q, want dotted quad", i, a)
		}
	}
	t.Logf("first line: %s", lines[0])
}

func columnNames() []string {
	var out []string
	for _, c := range schema.Columns {
		out = append(out, c.Name)
	}
	return out
}

// jsonKeys lists an object's keys in document order (encoding/json maps lose it).
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(bufio.NewReader(strings.NewReader(line)))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
