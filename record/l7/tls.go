package l7

import "encoding/binary"

const (
	tlsRecordHeaderLen    = 5
	tlsHandshakeHeaderLen = 4
	tlsMaxRecord          = 1 << 14 // TLSPlaintext.length limit, RFC 8446 §5.1
	tlsClientHello        = 1
	tlsExtServerName      = 0
	tlsExtSigAlgs         = 13
	tlsExtALPN            = 16
	tlsExtSupportedVers   = 43
	tlsNameTypeHostName   = 0
)

// ClientHello is what packetlake keeps of a TLS ClientHello.
type ClientHello struct {
	SNI        string // first host_name of server_name, ASCII rule (text.go)
	ALPN       string // first protocol of application_layer_protocol_negotiation, ASCII rule
	VersionMax uint16 // highest non-GREASE supported_versions entry, else legacy_version
	JA4        string // FoxIO's JA4 (ja4.go); "" unless the whole hello was read
}

// ParseTLSClientHello returns the first host_name of the server_name extension of the
// ClientHello that starts b (a TLS record header, then the handshake message). See
// ParseClientHelloRecord for the errors.
func ParseTLSClientHello(b []byte) (sni string, err error) {
	h, err := ParseClientHelloRecord(b)
	return h.SNI, err
}

// ParseClientHelloRecord reads the ClientHello that starts b (a TLS record header, then the
// handshake message): SNI, ALPN, highest version offered and JA4 (TCP variant, 't').
//
//   - No server_name extension, or a handshake message other than a ClientHello (a ServerHello
//     also starts 0x16 0x03): SNI "" and no error.
//   - The snippet ends before the server name is reached: ErrTLSTruncated. So does a
//     ClientHello continued in a second record (the message is longer than its first record):
//     only the first record is read, where tshark would reassemble.
//   - A length that overruns the one enclosing it, a record that is not a handshake, or a
//     record length of 0 or above 2^14: ErrTLSBadRecord.
//
// A ChangeCipherSpec record before the handshake record is skipped (LooksLikeCCSThenHandshake).
// Once the server name is read, a later truncation or bad length is not an error (the SNI
// stands, as before JA4): JA4, ALPN and VersionMax are then left empty, since a fingerprint of
// part of a hello would be a wrong fingerprint.
func ParseClientHelloRecord(b []byte) (ClientHello, error) {
	if LooksLikeCCSThenHandshake(b) {
		b = b[6:] // the ChangeCipherSpec record before a second ClientHello
	}
	if len(b) < 2 {
		return ClientHello{}, ErrTLSTruncated
	}
	if !LooksLikeTLSHandshake(b) {
		return ClientHello{}, ErrTLSBadRecord
	}
	if len(b) < tlsRecordHeaderLen+tlsHandshakeHeaderLen {
		return ClientHello{}, ErrTLSTruncated
	}
	recLen := int(binary.BigEndian.Uint16(b[3:]))
	if recLen < tlsHandshakeHeaderLen || recLen > tlsMaxRecord {
		return ClientHello{}, ErrTLSBadRecord
	}
	if b[5] != tlsClientHello {
		return ClientHello{}, nil
	}
	return parseClientHelloMsg(b[tlsRecordHeaderLen:min(len(b), tlsRecordHeaderLen+recLen)], 't')
}

// ParseClientHelloMessage reads a ClientHello handshake message (handshake header first, no
// record header), as QUIC carries it in CRYPTO frames; proto is JA4's first letter ('q' for
// QUIC). b may stop early, with the errors of ParseClientHelloRecord.
func ParseClientHelloMessage(b []byte, proto byte) (ClientHello, error) {
	if len(b) < tlsHandshakeHeaderLen {
		return ClientHello{}, ErrTLSTruncated
	}
	if b[0] != tlsClientHello {
		return ClientHello{}, ErrTLSBadRecord
	}
	return parseClientHelloMsg(b, proto)
}

// parseClientHelloMsg walks the message that starts b at its handshake header. b is the part
// present (of the first record, for TLS over TCP).
func parseClientHelloMsg(b []byte, proto byte) (ClientHello, error) {
	var h ClientHello
	msgLen := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	end := tlsHandshakeHeaderLen + msgLen
	r := tlsReader{b: b[:min(len(b), end)], pos: tlsHandshakeHeaderLen, msgEnd: end}
	var fp ja4Input
	fp.proto = proto

	fp.legacyVersion = uint16(r.u16())
	r.skip(32)                    // random
	r.skip(r.u8())                // legacy_session_id
	fp.ciphers = r.bytes(r.u16()) // cipher_suites
	r.skip(r.u8())                // legacy_compression_methods
	if r.err == nil && r.pos == end {
		fp.done(&h) // no extensions block: allowed before TLS 1.3
		return h, nil
	}
	extEnd := r.within(r.u16())
	sniSeen := false
	for r.err == nil && r.pos < extEnd {
		typ, n := r.u16(), r.u16()
		bodyEnd := r.within(n)
		if r.err == nil && bodyEnd > extEnd {
			r.err = ErrTLSBadRecord
		}
		if r.err != nil {
			break
		}
		body := r.bytes(n)
		if r.err != nil {
			break
		}
		fp.addExtension(uint16(typ), body)
		if typ == tlsExtServerName && !sniSeen {
			sniSeen = true
			name, err := serverName(body)
			if err != nil {
				r.err = err
				break
			}
			h.SNI = name
		}
	}
	if r.err == nil && r.pos != extEnd {
		r.err = ErrTLSBadRecord
	}
	if r.err != nil {
		if h.SNI != "" {
			return h, nil // what was read before the server name stands; no fingerprint
		}
		return ClientHello{}, r.err
	}
	fp.done(&h)
	return h, nil
}

// serverName returns the first host_name of a server_name extension body ("" if none).
func serverName(body []byte) (string, error) {
	r := tlsReader{b: body, msgEnd: len(body)}
	listEnd := r.within(r.u16())
	for r.err == nil && r.pos < listEnd {
		nameType, nameLen := r.u8(), r.u16()
		if r.err == nil && r.pos+nameLen > listEnd {
			return "", ErrTLSBadRecord
		}
		name := r.bytes(nameLen)
		if r.err == nil && nameType == tlsNameTypeHostName {
			return asciiString(name), nil
		}
	}
	if r.err != nil {
		return "", ErrTLSBadRecord // the body is whole: any overrun is the extension's own
	}
	return "", nil
}

// tlsReader reads big-endian fields of one handshake message, latching the first error so the
// walk above reads as a straight line. b is the part of the message in the snippet; msgEnd is
// where the message says it ends. Running past b is ErrTLSTruncated when the snippet stopped
// first, ErrTLSBadRecord when the message itself did.
type tlsReader struct {
	b      []byte
	pos    int
	msgEnd int
	err    error
}

func (r *tlsReader) fail(need int) {
	if r.err != nil {
		return
	}
	if need > r.msgEnd {
		r.err = ErrTLSBadRecord
	} else {
		r.err = ErrTLSTruncated
	}
}

func (r *tlsReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if r.pos+n > len(r.b) {
		r.fail(r.pos + n)
		return nil
	}
	v := r.b[r.pos : r.pos+n]
	r.pos += n
	return v
}

func (r *tlsReader) skip(n int) { r.bytes(n) }

func (r *tlsReader) u8() int {
	if v := r.bytes(1); v != nil {
		return int(v[0])
	}
	return 0
}

func (r *tlsReader) u16() int {
	if v := r.bytes(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

// within returns the end of a vector of n bytes starting here, which must fit in the message
// (whether or not it fits in the snippet).
func (r *tlsReader) within(n int) int {
	if r.err == nil && r.pos+n > r.msgEnd {
		r.err = ErrTLSBadRecord
	}
	return r.pos + n
}
