package l7

// These are the byte tests that decide which parser reads a snippet. The BPF program sets
// pl_record.l7_kind with the same tests (bpf/ must mirror them exactly); keeping them here, next to
// the parsers and under test, is what makes kernel and user space agree. DNS is chosen by port
// (UDP or TCP port 53 on either side), which needs no payload test.

// LooksLikeTLSHandshake reports whether a TCP payload starts a TLS handshake record:
//
//	b[0] == 0x16 (content type handshake) && b[1] == 0x03 (major version of SSLv3 … TLS 1.3)
//
// Two bytes are enough for the verifier-friendly check and they rule out SSLv2-style hellos,
// which no current client sends.
func LooksLikeTLSHandshake(b []byte) bool {
	return len(b) >= 2 && b[0] == 0x16 && b[1] == 0x03
}

// LooksLikeTLSClientHello is the test that selects the TLS parser: a handshake record whose
// first message is a ClientHello,
//
//	LooksLikeTLSHandshake(b) && b[5] == 1 (handshake type client_hello)
//
// Other handshake records (ServerHello, Certificate: the bulk of a handshake's bytes at a TLS
// client) carry nothing the parser reads, so the kernel does not copy them.
func LooksLikeTLSClientHello(b []byte) bool {
	return len(b) >= 6 && LooksLikeTLSHandshake(b) && b[5] == tlsClientHello
}

// httpMethods are the prefixes that select the HTTP parser: the RFC 9110 methods and PATCH
// (RFC 5789), upper case, each followed by one space. The longest is 8 bytes, so the BPF program
// can compare one 8-byte load under a mask per entry.
var httpMethods = [...]string{
	"GET ", "PUT ", "HEAD ", "POST ", "PATCH ", "TRACE ", "DELETE ", "CONNECT ", "OPTIONS ",
}

// LooksLikeHTTPRequest reports whether a TCP payload starts with one of exactly these byte
// strings (case-sensitive, as methods are):
//
//	"GET " "PUT " "HEAD " "POST " "PATCH " "TRACE " "DELETE " "CONNECT " "OPTIONS "
//
// ParseHTTPRequest itself accepts any token as a method; this list is only the kernel's filter.
func LooksLikeHTTPRequest(b []byte) bool {
	for _, m := range httpMethods {
		if len(b) >= len(m) && string(b[:len(m)]) == m {
			return true
		}
	}
	return false
}
