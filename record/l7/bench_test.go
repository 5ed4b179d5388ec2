package l7

import "testing"

// Benchmarks on real payloads (testdata/payloads.tsv), and the allocation budget they show kept
// as a test: one allocation per returned string, none for a registered HTTP method.

func BenchmarkParseDNS(b *testing.B) {
	p := payloads(b)
	for _, c := range []struct {
		name    string
		overTCP bool
	}{{"dns_query", false}, {"dns_response", false}, {"dns_tcp_response", true}} {
		in := p[c.name]
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := ParseDNS(in, c.overTCP); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseTLS(b *testing.B) {
	in := payload(b, "tls_client_hello")
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseTLSClientHello(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHTTP(b *testing.B) {
	p := payloads(b)
	for _, name := range []string{"http_request", "http_request_long"} {
		in := p[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, _, _, err := ParseHTTPRequest(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestAllocations(t *testing.T) {
	p := payloads(t)
	escaped := dnsMsg(1, 0, 1, 0, []byte("\x03a\x01b\x00"), qtypeA)
	for _, c := range []struct {
		name string
		max  float64
		run  func()
	}{
		{"dns", 1, func() { ParseDNS(p["dns_response"], false) }},
		{"dns escaped name", 1, func() { ParseDNS(escaped, false) }},
		{"tls", 3, func() { ParseTLSClientHello(p["tls_client_hello"]) }}, // SNI, ALPN and JA4 strings
		{"http", 2, func() { ParseHTTPRequest(p["http_request"]) }},
	} {
		if n := testing.AllocsPerRun(100, c.run); n > c.max {
			t.Errorf("%s: %v allocations per parse, want at most %v", c.name, n, c.max)
		}
	}
}
