package l7

import (
	"encoding/binary"
	"strings"
	"testing"
)

func u16(n int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(n)) }

// vec16 prefixes b with its 2-byte length.
func vec16(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return append(u16(len(b)), b...)
}

// sniExt is a server_name extension holding one entry of the given name type.
func sniExt(nameType byte, name string) []byte {
	entry := append([]byte{nameType}, vec16([]byte(name))...)
	return append(u16(0), vec16(vec16(entry))...)
}

// alpnExt is an unrelated extension (ALPN "h2") to walk past.
var alpnExt = append(u16(16), vec16(vec16([]byte("\x02h2")))...)

// helloBody is a ClientHello body: version, random, a session id, two suites, null compression,
// then the extensions block when exts is not nil.
func helloBody(exts []byte) []byte {
	b := append([]byte{3, 3}, make([]byte, 32)...)
	b = append(b, 4, 1, 2, 3, 4)
	b = append(b, vec16([]byte{0x13, 0x01, 0xc0, 0x2f})...)
	b = append(b, 1, 0)
	if exts != nil {
		b = append(b, vec16(exts)...)
	}
	return b
}

// handshake wraps a body in a handshake header and one record.
func handshake(typ byte, body []byte) []byte {
	hs := append([]byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{0x16, 0x03, 0x01, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func clientHello(exts ...[]byte) []byte {
	var e []byte
	for _, x := range exts {
		e = append(e, x...)
	}
	if e == nil {
		e = []byte{}
	}
	return handshake(1, helloBody(e))
}

type tlsCase struct {
	name string
	in   []byte
	sni  string
	err  error
}

func tlsCases(t testing.TB) []tlsCase {
	long := strings.Repeat("x", 300)
	split := clientHello(alpnExt, sniExt(0, "split.example"))
	binary.BigEndian.PutUint16(split[3:], 60) // the record holds only the start of the message
	return []tlsCase{
		{"sni", clientHello(alpnExt, sniExt(0, "example.com")), "example.com", nil},
		{"real hello", payload(t, "tls_client_hello"), "contile.services.mozilla.com", nil},
		{"sni absent", clientHello(alpnExt), "", nil},
		{"real hello without sni", payload(t, "tls_client_hello_no_sni"), "", nil},
		{"empty extensions", clientHello(), "", nil},
		{"no extensions block", handshake(1, helloBody(nil)), "", nil},
		{"other name type only", clientHello(sniExt(1, "not-a-host")), "", nil},
		{"server hello", handshake(2, helloBody([]byte{})), "", nil},
		{"non-ascii and nul", clientHello(sniExt(0, "a\x01\xffb\x00c")), "a\x01\uFFFDb", nil},
		{"cut at 255 bytes", clientHello(sniExt(0, long)), long[:255], nil},

		{"empty", nil, "", ErrTLSTruncated},
		{"record header cut", []byte{0x16, 3, 1, 0}, "", ErrTLSTruncated},
		{"sni cut", func() []byte { b := clientHello(sniExt(0, "example.com")); return b[:len(b)-3] }(), "", ErrTLSTruncated},
		{"message continues in next record", split, "", ErrTLSTruncated},
		{"application data", []byte{0x17, 3, 3, 0, 5, 1, 2, 3, 4, 5}, "", ErrTLSBadRecord},
		{"sslv2", []byte{0x80, 0x2e, 1, 3, 1, 0, 0, 0, 0}, "", ErrTLSBadRecord},
		{"record length 0", []byte{0x16, 3, 1, 0, 0, 1, 0, 0, 0}, "", ErrTLSBadRecord},
		{"record length above 2^14", []byte{0x16, 3, 1, 0x40, 1, 1, 0, 0, 0}, "", ErrTLSBadRecord},
		{"extensions overrun hello", func() []byte {
			b := clientHello(sniExt(0, "a.b"))
			b[len(b)-len(sniExt(0, "a.b"))-1] += 8 // extensions length
			return b
		}(), "", ErrTLSBadRecord},
		{"session id overruns hello", handshake(1, append([]byte{3, 3}, append(make([]byte, 32), 200)...)), "", ErrTLSBadRecord},
		{"extension overruns block", clientHello(append(u16(0), u16(100)...)), "", ErrTLSBadRecord},
		{"name overruns list", clientHello(append(u16(0), vec16(u16(4), []byte{0}, u16(9), []byte("abc"))...)), "", ErrTLSBadRecord},
	}
}

func TestParseTLSClientHello(t *testing.T) {
	for _, c := range tlsCases(t) {
		t.Run(c.name, func(t *testing.T) {
			sni, err := ParseTLSClientHello(c.in)
			if sni != c.sni || err != c.err {
				t.Errorf("ParseTLSClientHello = %q, %v; want %q, %v", sni, err, c.sni, c.err)
			}
		})
	}
}

// TestParseTLSPrefixes: every prefix of a good ClientHello gives the full answer or
// ErrTLSTruncated, and never panics.
func TestParseTLSPrefixes(t *testing.T) {
	for _, c := range tlsCases(t) {
		if c.err != nil {
			continue
		}
		for i := range len(c.in) {
			sni, err := ParseTLSClientHello(c.in[:i])
			if !(err == ErrTLSTruncated && sni == "" || err == nil && sni == c.sni) {
				t.Errorf("%s[:%d] = %q, %v; want %q or %v", c.name, i, sni, err, c.sni, ErrTLSTruncated)
			}
		}
	}
}
