// Package l7 parses the application-layer fields of the payload snippet the BPF program copies
// after each record: the first DNS question (DNS, mDNS, LLMNR), the TLS ClientHello (server name,
// first ALPN protocol, highest version offered, FoxIO's JA4 fingerprint), the HTTP/1.x request
// line and Host header (also SSDP over UDP), and QUIC v1/v2 client Initial packets, decrypted
// with the Initial keys to reach their ClientHello (quic.go).
//
// A snippet is at most schema.SnippetHeadMax bytes of one packet's L4 payload (schema.SnippetMax
// for a QUIC Initial). It may stop anywhere (the cap, or a TCP segment holding part of a message)
// and may be hostile, so every parser reads only inside the slice, does a bounded amount of work
// and allocates only what it returns. When a parser stops early it returns the fields it has and
// an error whose Reason() is the name stored in the parse_error column.
//
// Strings are rendered the way tshark 4.0 shows the same field, so that the oracle tests can
// compare with it byte for byte; see text.go.
package l7
