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

// LooksLikeCCSThenHandshake is the second test that selects the TLS parser: a ChangeCipherSpec
// record followed by a handshake record in one segment,
//
//	b[0] == 0x14 && b[1] == 0x03 && b[3] == 0 && b[4] == 1 && b[5] == 1 && b[6] == 0x16 && b[7] == 0x03
//
// which is how a TLS 1.3 client sends its second ClientHello after a HelloRetryRequest
// (middlebox compatibility mode, RFC 8446 §D.4). A TLS 1.2 client's encrypted Finished follows
// its ChangeCipherSpec the same way; the parser finds no ClientHello in it.
func LooksLikeCCSThenHandshake(b []byte) bool {
	return len(b) >= 8 && b[0] == 0x14 && b[1] == 0x03 && b[3] == 0 && b[4] == 1 && b[5] == 1 && b[6] == 0x16 && b[7] == 0x03
}

// LooksLikeSSDPRequest is the test that selects the HTTP parser for a UDP payload: the request
// line of HTTP over UDP (SSDP, UPnP: RFC 7230 syntax over UDP port 1900 and others) starts
//
//	"M-SEARCH" or "NOTIFY "
//
// ("M-SEARCH" is eight bytes, all the kernel compares; the space after it is not checked).
func LooksLikeSSDPRequest(b []byte) bool {
	return len(b) >= 8 && string(b[:8]) == "M-SEARCH" || len(b) >= 7 && string(b[:7]) == "NOTIFY "
}

// IsDNSPort reports whether a port selects the DNS parser (on either side, UDP or TCP): DNS (53),
// multicast DNS (5353, RFC 6762) and LLMNR (5355, RFC 4795), which share DNS's message format.
func IsDNSPort(p uint16) bool { return p == 53 || p == 5353 || p == 5355 }

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
