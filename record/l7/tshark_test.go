package l7

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Helpers for the tests that compare with tshark: running it, and writing small pcaps of
// hand-built packets for it to read.

// tsharkSep separates fields in tshark's output. A control byte, because HTTP values may
// legitimately hold tabs (tshark keeps trailing ones in http.host).
const tsharkSep = "\x1f"

// tsharkFields runs tshark over a capture and returns one row per frame, the values of fields in
// order (first occurrence of each). TCP reassembly is off so that tshark, like the kernel, sees
// each segment on its own: with it on, a message spread over segments is dissected in the frame
// that completes it, whose payload alone we could not parse.
func tsharkFields(t *testing.T, capture string, fields []string) [][]string {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatalf("tshark not found in PATH: the oracle tests need it " +
			"(DEBIAN_FRONTEND=noninteractive apt-get install -y tshark)")
	}
	args := []string{"-n", "-r", capture, "-o", "tcp.desegment_tcp_streams:FALSE",
		"-T", "fields", "-E", "separator=" + tsharkSep, "-E", "occurrence=f"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
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

// writePcap writes Ethernet frames to a classic pcap file in a test directory.
func writePcap(t *testing.T, frames [][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr[0:], 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 65535) // snaplen
	le.PutUint32(hdr[20:], 1)     // LINKTYPE_ETHERNET
	buf.Write(hdr)
	for i, f := range frames {
		rec := make([]byte, 16)
		le.PutUint32(rec[0:], uint32(i)) // one second apart, in order
		le.PutUint32(rec[8:], uint32(len(f)))
		le.PutUint32(rec[12:], uint32(len(f)))
		buf.Write(rec)
		buf.Write(f)
	}
	path := filepath.Join(t.TempDir(), "synthetic.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ipv4Frame wraps an L4 header and payload in Ethernet and IPv4 (checksums left zero: tshark
// does not verify them by default).
func ipv4Frame(proto byte, l4 []byte) []byte {
	f := []byte{0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00}
	ip := make([]byte, 20)
	ip[0], ip[8], ip[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	copy(ip[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	return append(append(f, ip...), l4...)
}

func udpFrame(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return ipv4Frame(17, append(h, payload...))
}

// tcpFrame builds a PSH+ACK segment. Give each one its own source port: tshark would otherwise
// take them for one stream and flag retransmissions instead of dissecting them.
func tcpFrame(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], 1)
	binary.BigEndian.PutUint32(h[8:], 1)
	h[12], h[13] = 5<<4, 0x18
	binary.BigEndian.PutUint16(h[14:], 65535)
	return ipv4Frame(6, append(h, payload...))
}

// capField cuts a tshark value the way our parsers cut theirs: at maxFieldLen bytes, not inside
// a UTF-8 sequence.
func capField(s string) string {
	for i := 0; i < len(s); {
		_, w := utf8.DecodeRuneInString(s[i:])
		if i+w > maxFieldLen {
			return s[:i]
		}
		i += w
	}
	return s
}

// tsharkASCII undoes the one escape tshark's field output adds to ASCII string fields (TLS and
// HTTP): a tab becomes the two characters `\t`. DNS names are escaped by the dissector itself
// (format_text), which we reproduce, so they are compared as printed.
func tsharkASCII(s string) string {
	return strings.ReplaceAll(s, `\t`, "\t")
}
