package l7

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets. With plain `go test` they only run their seeds; search with e.g.
//
//	go test -run '^$' -fuzz '^FuzzParseDNS$' -fuzztime 30s ./l7/
//
// Each checks the promises of the package doc: no panic, a known reason on error, valid UTF-8
// within the length caps.

func FuzzParseDNS(f *testing.F) {
	for _, c := range dnsCases() {
		f.Add(c.in, c.overTCP)
	}
	p := payloads(f)
	f.Add(p["dns_query"], false)
	f.Add(p["dns_response"], false)
	f.Add(p["dns_tcp_response"], true)
	f.Fuzz(func(t *testing.T, b []byte, overTCP bool) {
		d, err := ParseDNS(b, overTCP)
		if err != nil && err != ErrDNSTruncated && err != ErrDNSBadName {
			t.Fatalf("unexpected error %v", err)
		}
		if !utf8.ValidString(d.QName) || len(d.QName) > 4*(dnsMaxName-2) {
			t.Fatalf("QName %q", d.QName)
		}
		if err == ErrDNSBadName && d.QName != "" {
			t.Fatalf("bad name yet QName %q", d.QName)
		}
	})
}

func FuzzParseTLSClientHello(f *testing.F) {
	for _, c := range tlsCases(f) {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sni, err := ParseTLSClientHello(b)
		if err != nil && err != ErrTLSTruncated && err != ErrTLSBadRecord {
			t.Fatalf("unexpected error %v", err)
		}
		if err != nil && sni != "" || !utf8.ValidString(sni) || len(sni) > maxFieldLen {
			t.Fatalf("sni %q, %v", sni, err)
		}
	})
}

func FuzzParseHTTPRequest(f *testing.F) {
	for _, c := range httpCases(f) {
		f.Add([]byte(c.in))
	}
	f.Add(payload(f, "http_request_long"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, h, p, err := ParseHTTPRequest(b)
		if err != nil && err != ErrHTTPTruncated && err != ErrHTTPBadRequest {
			t.Fatalf("unexpected error %v", err)
		}
		for _, s := range []string{m, h, p} {
			if !utf8.ValidString(s) || len(s) > maxFieldLen {
				t.Fatalf("field %q", s)
			}
		}
		if LooksLikeHTTPRequest(b) && m == "" {
			t.Fatalf("kernel filter passes %q but no method", b)
		}
	})
}

func FuzzParseQUICInitial(f *testing.F) {
	f.Add([]byte("\xc3\x00\x00\x00\x01\x08\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x40\x20" + strings.Repeat("\xaa", 60)))
	f.Add([]byte("\xd0\x6b\x33\x43\xcf\x08\x01\x02\x03\x04\x05\x06\x07\x08\x01\x09\x00\x14" + strings.Repeat("\x55", 30)))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQUICInitial(b)
		if err != nil && err != ErrQUICTruncated && err != ErrQUICBadPacket {
			t.Fatalf("unexpected error %v", err)
		}
		stream := CryptoStream(q.Crypto, 1<<16)
		if n := ClientHelloLen(stream); n > 0 && n <= len(stream) {
			if h, err := ParseClientHelloMessage(stream[:n], 'q'); err == nil && h.JA4 != "" && h.JA4[0] != 'q' {
				t.Fatalf("JA4 %q", h.JA4)
			}
		}
	})
}
