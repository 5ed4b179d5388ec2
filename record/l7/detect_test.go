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

func TestLooksLikeUDPAndSecondHello(t *testing.T) {
	v1 := "\xc3\x00\x00\x00\x01\x08"
	for _, c := range []struct {
		in                string
		quic, ssdp, ccsHs bool
	}{
		{v1, true, false, false},
		{"\xc0\x00\x00\x00\x01\x14", true, false, false},  // 20-byte DCID
		{"\xc0\x00\x00\x00\x01\x15", false, false, false}, // 21: not QUIC v1
		{"\xc0\x00\x00\x00\x01\x07", false, false, false}, // 7: not a client's first Initial
		{"\xd0\x00\x00\x00\x01\x08", false, false, false}, // v1 0-RTT
		{"\xd0\x6b\x33\x43\xcf\x08", true, false, false},  // v2 Initial
		{"\xc0\x6b\x33\x43\xcf\x08", false, false, false}, // v2 Retry
		{"\xe0\x00\x00\x00\x01\x08", false, false, false}, // v1 Handshake
		{"\x40\x00\x00\x00\x01\x08", false, false, false}, // short header
		{"\xc0\x00\x00\x00\x01", false, false, false},
		{"M-SEARCH * HTTP/1.1", false, true, false},
		{"M-SEARCH", false, true, false},
		{"M-SEARC", false, false, false},
		{"NOTIFY * HTTP/1.1", false, true, false},
		{"NOTIFY", false, false, false},
		{"\x14\x03\x03\x00\x01\x01\x16\x03\x03", false, false, true},
		{"\x14\x03\x03\x00\x01\x01\x17\x03", false, false, false},
		{"\x14\x03\x03\x00\x01\x01\x16", false, false, false},
	} {
		if got := LooksLikeQUICInitial([]byte(c.in)); got != c.quic {
			t.Errorf("LooksLikeQUICInitial(%q) = %v", c.in, got)
		}
		if got := LooksLikeSSDPRequest([]byte(c.in)); got != c.ssdp {
			t.Errorf("LooksLikeSSDPRequest(%q) = %v", c.in, got)
		}
		if got := LooksLikeCCSThenHandshake([]byte(c.in)); got != c.ccsHs {
			t.Errorf("LooksLikeCCSThenHandshake(%q) = %v", c.in, got)
		}
	}
	for p, want := range map[uint16]bool{53: true, 5353: true, 5355: true, 5354: false, 1900: false} {
		if IsDNSPort(p) != want {
			t.Errorf("IsDNSPort(%d) = %v", p, !want)
		}
	}
}
