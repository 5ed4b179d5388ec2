package l7

import "testing"

func TestLooksLike(t *testing.T) {
	for _, c := range []struct {
		in        string
		http, tls bool
	}{
		{"GET / HTTP/1.1\r\n", true, false},
		{"OPTIONS * HTTP/1.1", true, false},
		{"CONNECT h:443 HTTP/1.1", true, false},
		{"PATCH ", true, false},
		{"GET", false, false},
		{"GETX /", false, false},
		{"get / HTTP/1.1", false, false},
		{"PROPFIND / HTTP/1.1", false, false},
		{"HTTP/1.1 200 OK", false, false},
		{"\x16\x03\x01\x02\x00\x01", false, true},
		{"\x16\x03", false, true},
		{"\x16", false, false},
		{"\x16\x02\x00", false, false},
		{"\x17\x03\x03", false, false},
		{"", false, false},
	} {
		if got := LooksLikeHTTPRequest([]byte(c.in)); got != c.http {
			t.Errorf("LooksLikeHTTPRequest(%q) = %v", c.in, got)
		}
		if got := LooksLikeTLSHandshake([]byte(c.in)); got != c.tls {
			t.Errorf("LooksLikeTLSHandshake(%q) = %v", c.in, got)
		}
	}
}
