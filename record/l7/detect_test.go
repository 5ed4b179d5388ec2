package l7

import "testing"

func TestLooksLike(t *testing.T) {
	for _, c := range []struct {
		in               string
		http, tls, hello bool
	}{
		{"GET / HTTP/1.1\r\n", true, false, false},
		{"OPTIONS * HTTP/1.1", true, false, false},
		{"CONNECT h:443 HTTP/1.1", true, false, false},
		{"PATCH ", true, false, false},
		{"GET", false, false, false},
		{"GETX /", false, false, false},
		{"get / HTTP/1.1", false, false, false},
		{"PROPFIND / HTTP/1.1", false, false, false},
		{"HTTP/1.1 200 OK", false, false, false},
		{"\x16\x03\x01\x02\x00\x01", false, true, true},
		{"\x16\x03\x03\x00\x5a\x02", false, true, false}, // ServerHello
		{"\x16\x03", false, true, false},
		{"\x16", false, false, false},
		{"\x16\x02\x00", false, false, false},
		{"\x17\x03\x03", false, false, false},
		{"", false, false, false},
	} {
		if got := LooksLikeHTTPRequest([]byte(c.in)); got != c.http {
			t.Errorf("LooksLikeHTTPRequest(%q) = %v", c.in, got)
		}
		if got := LooksLikeTLSHandshake([]byte(c.in)); got != c.tls {
			t.Errorf("LooksLikeTLSHandshake(%q) = %v", c.in, got)
		}
		if got := LooksLikeTLSClientHello([]byte(c.in)); got != c.hello {
			t.Errorf("LooksLikeTLSClientHello(%q) = %v", c.in, got)
		}
	}
}
