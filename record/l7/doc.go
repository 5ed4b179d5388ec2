// Package l7 parses the application-layer fields of the payload snippet the BPF program copies
// after each record: the first DNS question, the TLS ClientHello server name and the HTTP/1.x
// request line and Host header.
//
// A snippet is at most schema.SnippetMax bytes of one packet's L4 payload. It may stop anywhere
// (the cap, or a TCP segment holding part of a message) and may be hostile, so every parser reads
// only inside the slice, does a bounded amount of work and allocates only the strings it returns.
// When a parser stops early it returns the fields it has and an error whose Reason() is the name
// stored in the parse_error column.
//
// Strings are rendered the way tshark 4.0 shows the same field, so that the oracle tests can
// compare with it byte for byte; see text.go.
package l7
