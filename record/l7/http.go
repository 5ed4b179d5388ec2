package l7

import (
	"bytes"
	"strings"
)

// ParseHTTPRequest reads an HTTP/1.x request line, METHOD SP target SP version, and the header
// block after it up to the first Host header, the blank line that ends the block, or the end of
// the snippet.
//
// Parsing is lenient the way tshark's is: the method is any token (LooksLikeHTTPRequest is the
// narrower kernel filter), the target runs to the next space or line end (an empty target for
// "GET  /x" and a missing version, as in HTTP/0.9, are accepted), lines may end in LF as well as
// CRLF. A header line matches "Host:" case-insensitively with no space before the colon (RFC 9112
// §5.1; tshark agrees); the first one wins; its value is trimmed of spaces and tabs on both sides
// (RFC 9110 §5.5 — tshark 4.0 keeps trailing ones).
//
// ErrHTTPTruncated means the snippet ended before the request line did, or before the header
// block did without a Host header; the method and the (maybe cut) target are still returned.
// A Host line cut by the snippet's end is not returned: a partial host would group with the
// wrong rows. A payload that does not start with a token and a space is ErrHTTPBadRequest (the
// kernel filter never hands one over; a caller parsing other payloads may).
//
// All three strings are rendered by the ASCII rule and cut at 255 bytes (text.go).
func ParseHTTPRequest(b []byte) (method, host, path string, err error) {
	sp := bytes.IndexByte(b, ' ')
	switch {
	case sp < 0 && len(b) > 0 && isToken(b):
		return "", "", "", ErrHTTPTruncated // a method cut before its space
	case sp < 0 && len(b) == 0:
		return "", "", "", ErrHTTPTruncated
	case sp <= 0 || !isToken(b[:sp]):
		return "", "", "", ErrHTTPBadRequest
	}
	method = methodString(b[:sp])

	rest := b[sp+1:]
	targetEnd := bytes.IndexAny(rest, " \r\n")
	if targetEnd < 0 {
		return method, "", asciiString(rest), ErrHTTPTruncated
	}
	path = asciiString(rest[:targetEnd])

	lf := bytes.IndexByte(rest, '\n')
	if lf < 0 {
		return method, "", path, ErrHTTPTruncated
	}
	// Each pass consumes one whole line, so the loop ends within len(b) passes.
	for rest = rest[lf+1:]; ; {
		lf = bytes.IndexByte(rest, '\n')
		if lf < 0 {
			return method, "", path, ErrHTTPTruncated
		}
		line := bytes.TrimSuffix(rest[:lf], []byte{'\r'})
		if len(line) == 0 {
			return method, "", path, nil // end of the header block, no Host
		}
		if len(line) >= 5 && line[4] == ':' && asciiEqualFold(line[:4], "host") {
			return method, asciiString(trimOWS(line[5:])), path, nil
		}
		rest = rest[lf+1:]
	}
}

// methodString returns the registered methods as constants, sparing an allocation per request.
func methodString(m []byte) string {
	switch string(m) { // the compiler does not allocate for a switch on string(bytes)
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "CONNECT":
		return "CONNECT"
	case "OPTIONS":
		return "OPTIONS"
	case "TRACE":
		return "TRACE"
	case "PATCH":
		return "PATCH"
	}
	return asciiString(m)
}

// isToken reports whether b is an RFC 9110 token: tchar = "!#$%&'*+-.^_`|~" / DIGIT / ALPHA.
func isToken(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := range len(lower) {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	return bytes.Trim(b, " \t")
}
