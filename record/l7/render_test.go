package l7

import (
	"strings"
	"testing"
)

// TestTsharkRendering checks the rendering rules of text.go and the name rules of dns.go against
// tshark itself, on hand-built packets holding the awkward bytes real captures lack.
func TestTsharkRendering(t *testing.T) {
	labels := []string{
		"a.b", "a\\b", "a b", "a\x00b", "a\tb", "a\nb", "a\x7fb", "a\x01b", "a\x1bb", "a\rb", "a\vb",
		"a\ab", "a\bb", "a\fb", "a\"b", "a,b",
		"a\xc3\xa9",        // é, valid UTF-8
		"a\xffb", "a\x80b", // invalid bytes
		"a\xe2\x82b",           // cut 3-byte sequence
		"\xed\xa0\x80z",        // surrogate
		"\xc0\xafz",            // overlong '/'
		"\xc0\x81z",            // overlong control
		"\xc2\x85z",            // U+0085, a C1 control
		"\xe2\x80\x8bz",        // U+200B, format
		"\xee\x80\x80z",        // U+E000, private use: printable to GLib
		"\xe2\x80\xa8z",        // U+2028, line separator
		"\xc2\xa0z",            // U+00A0
		"\xef\xbf\xbez",        // U+FFFE, noncharacter
		"\xcd\xb8z",            // U+0378, unassigned
		"\xf0\x9f\x92\xa9",     // U+1F4A9
		"\xf3\xa0\x80\x81",     // U+E0001, format, escaped as \U
		"\xf8\x88\x80\x80\x80", // obsolete 5-byte form
		"\xf4\x90\x80\x80",     // above U+10FFFF
		strings.Repeat("\x01", 63),
	}
	var names [][]byte
	for _, l := range labels {
		names = append(names, append(append([]byte{byte(len(l))}, l...), 3, 'c', 'o', 'm', 0))
	}
	names = append(names,
		[]byte("\x02a\xe2\x02\x82\x82\x00"), // a UTF-8 sequence across a label boundary
		[]byte{0},                           // root
		wireName(strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+"."+strings.Repeat("c", 63)+"."+strings.Repeat("d", 61)),
		wireName(strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+"."+strings.Repeat("c", 63)+"."+strings.Repeat("d", 62)),
		wireName(strings.Repeat("x.", 126)+"x"),
		wireName(strings.Repeat("x.", 127)+"x"),
		[]byte{0xc0, 12},                        // pointer to itself
		[]byte("\x03www\xc0\x0c"),               // loop
		[]byte{0xc0, 18, 0, 1, 0, 1, 1, 'x', 0}, // forward pointer
	)
	var frames [][]byte
	var dnsIn [][]byte
	for i, n := range names {
		m := dnsMsg(uint16(i), 0x0100, 1, 0, n, qtypeA)
		dnsIn = append(dnsIn, m)
		frames = append(frames, udpFrame(40000, 53, m))
	}

	snis := []string{"a\x01b\xffc\xc3\xa9\\d.com", "nul\x00after", "sp ace", "x\x7f"}
	for i, s := range snis {
		frames = append(frames, tcpFrame(41000+uint16(i), 443, clientHello(sniExt(0, s))))
	}
	reqs := []string{
		"GET /p\x01a\xffth\xc3\xa9 HTTP/1.1\r\nHost: \t h\x01o\xffst\xc3\xa9 \t\r\n\r\n",
		"GET / HTTP/1.1\r\nhOsT:x\r\nHost: second\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
		"GET / HTTP/1.1\r\nX: y\r\n Host: z\r\nHost: w\r\n\r\n",
		"GET  /double HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x\r\nHost: a\r\n\r\n",
		"GET /x HTTP/1.1\nHost: lf\n\n",
		"GET /x HTTP/1.1\r\nHost: a b \r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
		"GET /x y HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\n",
		"GET /x HTT",
		"GET /x HTTP/1.1\r\nHost:   \r\n\r\n",
		"DELETE /" + strings.Repeat("\xff", 100) + " HTTP/1.1\r\nHost: a\r\n\r\n",
	}
	for i, r := range reqs {
		frames = append(frames, tcpFrame(42000+uint16(i), 80, []byte(r)))
	}

	fields := []string{"dns.qry.name", "tls.handshake.extensions_server_name",
		"http.request.method", "http.host", "http.request.uri"}
	rows := tsharkFields(t, writePcap(t, frames), fields)
	if len(rows) != len(frames) {
		t.Fatalf("tshark returned %d rows for %d frames", len(rows), len(frames))
	}

	for i, m := range dnsIn {
		got, err := ParseDNS(m, false)
		switch tname := rows[i][0]; tname {
		case "": // tshark threw an exception (malformed): we must report some error
			if err == nil || got.QName != "" {
				t.Errorf("name %q: %q, %v; tshark finds it malformed", names[i], got.QName, err)
			}
		case "<Name too long>", "<Name contains a pointer that loops>":
			if err != ErrDNSBadName {
				t.Errorf("name %q: %q, %v; tshark %s, want %v", names[i], got.QName, err, tname, ErrDNSBadName)
			}
		default:
			if tname == "<Root>" {
				tname = ""
			}
			if got.QName != tname || err != nil {
				t.Errorf("name %q: %q, %v; tshark %q", names[i], got.QName, err, tname)
			}
		}
	}
	rows = rows[len(dnsIn):]
	for i, s := range snis {
		got, err := ParseTLSClientHello(clientHello(sniExt(0, s)))
		if want := capField(tsharkASCII(rows[i][1])); got != want || err != nil {
			t.Errorf("SNI %q: %q, %v; tshark %q", s, got, err, want)
		}
	}
	rows = rows[len(snis):]
	for i, r := range reqs {
		m, h, p, _ := ParseHTTPRequest([]byte(r))
		want := []string{capField(tsharkASCII(rows[i][2])),
			capField(strings.TrimRight(tsharkASCII(rows[i][3]), " \t")), capField(tsharkASCII(rows[i][4]))}
		if m != want[0] || h != want[1] || p != want[2] {
			t.Errorf("request %q: %q, %q, %q; tshark %q", r, m, h, p, want)
		}
	}
}
