package record

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// The text forms of WriteJSON, and strings that need escaping, on a hand-filled packet.
func TestWriteJSONForms(t *testing.T) {
	p := Packet{
		TS:          1_700_000_000_123_456_789,
		Host:        "h",
		SrcMAC:      0xaabbccddeeff,
		DstMAC:      0x0000000000ff,
		SrcAddr:     netip.MustParseAddr("::ffff:10.0.0.1").As16(),
		DstAddr:     netip.MustParseAddr("2001:db8::1").As16(),
		SrcPort:     53,
		HTTPPath:    "/a?b=1&c=<\"x\">\n\x01\xff",
		CollectorID: 1 << 63,
	}
	var sb strings.Builder
	if err := WriteJSON(&sb, &p); err != nil {
		t.Fatal(err)
	}
	line := sb.String()
	if !strings.HasSuffix(line, "}\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("not one line: %q", line)
	}
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, line)
	}
	for k, want := range map[string]any{
		"ts":           "2023-11-14T22:13:20.123456789Z",
		"src_mac":      "aa:bb:cc:dd:ee:ff",
		"dst_mac":      "00:00:00:00:00:ff",
		"src_addr":     "10.0.0.1",
		"dst_addr":     "2001:db8::1",
		"src_port":     json.Number("53"),
		"collector_id": json.Number("9223372036854775808"),
		"http_path":    "/a?b=1&c=<\"x\">\n\x01\ufffd",
		"dns_qname":    "",
	} {
		if obj[k] != want {
			t.Errorf("%s = %#v, want %#v", k, obj[k], want)
		}
	}
	if strings.Contains(line, `\u0026`) {
		t.Errorf("& escaped: %s", line)
	}
}
