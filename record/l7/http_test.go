package l7

import (
	"strings"
	"testing"
)

type httpCase struct {
	name               string
	in                 string
	method, host, path string
	err                error
}

func httpCases(t testing.TB) []httpCase {
	long := "/" + strings.Repeat("p", 400)
	return []httpCase{
		{"get", "GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n", "GET", "example.com", "/index.html", nil},
		{"real request", string(payload(t, "http_request")), "GET", "localhost:8000", "/", nil},
		{"lowercase host", "POST /api HTTP/1.1\r\nuser-agent: x\r\nhost: api.example\r\n\r\n", "POST", "api.example", "/api", nil},
		{"host trimmed of OWS", "GET / HTTP/1.1\r\nHOST:\t  spaced.example \t\r\n\r\n", "GET", "spaced.example", "/", nil},
		{"first host wins", "GET / HTTP/1.1\r\nHost: one\r\nHost: two\r\n\r\n", "GET", "one", "/", nil},
		{"no host", "GET / HTTP/1.0\r\nUser-Agent: x\r\n\r\n", "GET", "", "/", nil},
		{"empty host", "GET / HTTP/1.1\r\nHost:   \r\n\r\n", "GET", "", "/", nil},
		{"space before colon is not host", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "GET", "", "/", nil},
		{"folded line is not host", "GET / HTTP/1.1\r\nX: y\r\n Host: z\r\n\r\n", "GET", "", "/", nil},
		{"lf line ends", "GET /x HTTP/1.1\nHost: lf.example\n\n", "GET", "lf.example", "/x", nil},
		{"http/0.9 style line", "GET /x\r\nHost: a\r\n\r\n", "GET", "a", "/x", nil},
		{"double space", "GET  /x HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "a", "", nil},
		{"connect", "CONNECT ts01-b.cloudsink.net:443 HTTP/1.0\r\nUser-Agent: x\r\n\r\n", "CONNECT", "", "ts01-b.cloudsink.net:443", nil},
		{"other token method", "PROPFIND /dav HTTP/1.1\r\nHost: dav\r\n\r\n", "PROPFIND", "dav", "/dav", nil},
		{"host found before the end", "GET / HTTP/1.1\r\nHost: early\r\nCookie: abc", "GET", "early", "/", nil},
		{"path cut at 255 bytes", "GET " + long + " HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "a", long[:255], nil},
		{"non-ascii and nul", "GET /\xe9\x00x HTTP/1.1\r\nHost: h\xffst\r\n\r\n", "GET", "h\uFFFDst", "/\uFFFD", nil},

		{"empty", "", "", "", "", ErrHTTPTruncated},
		{"method cut", "GE", "", "", "", ErrHTTPTruncated},
		{"not a token", "G\x01T / HTTP/1.1\r\n\r\n", "", "", "", ErrHTTPBadRequest},
		{"method cut before its space", "OPTIO", "", "", "", ErrHTTPTruncated},
		{"target cut", "GET /very/long/pa", "GET", "", "/very/long/pa", ErrHTTPTruncated},
		{"request line cut", "GET /x HTT", "GET", "", "/x", ErrHTTPTruncated},
		{"headers cut without host", "GET /x HTTP/1.1\r\nAccept: */*\r\n", "GET", "", "/x", ErrHTTPTruncated},
		{"host line cut", "GET /x HTTP/1.1\r\nHost: exam", "GET", "", "/x", ErrHTTPTruncated},
		{"request line only", "GET / HTTP/1.0\n", "GET", "", "/", ErrHTTPTruncated},
	}
}

func TestParseHTTPRequest(t *testing.T) {
	for _, c := range httpCases(t) {
		t.Run(c.name, func(t *testing.T) {
			m, h, p, err := ParseHTTPRequest([]byte(c.in))
			if m != c.method || h != c.host || p != c.path || err != c.err {
				t.Errorf("ParseHTTPRequest = %q, %q, %q, %v; want %q, %q, %q, %v",
					m, h, p, err, c.method, c.host, c.path, c.err)
			}
		})
	}
}

// TestParseHTTPPrefixes: every prefix of a good request gives the full answer or
// ErrHTTPTruncated with a method that is the full one or empty, no host, and a path that is a
// prefix of the full one; never a wrong host.
func TestParseHTTPPrefixes(t *testing.T) {
	for _, c := range httpCases(t) {
		if c.err != nil {
			continue
		}
		for i := range len(c.in) {
			m, h, p, err := ParseHTTPRequest([]byte(c.in[:i]))
			switch {
			case err == nil:
				if m != c.method || h != c.host || p != c.path {
					t.Errorf("%s[:%d] = %q, %q, %q; want %q, %q, %q", c.name, i, m, h, p, c.method, c.host, c.path)
				}
			case err != ErrHTTPTruncated:
				t.Errorf("%s[:%d]: %v", c.name, i, err)
			case m != "" && m != c.method, h != "", !strings.HasPrefix(c.path, p):
				t.Errorf("%s[:%d] = %q, %q, %q, %v; not a prefix of %q, %q, %q",
					c.name, i, m, h, p, err, c.method, c.host, c.path)
			}
		}
	}
}
