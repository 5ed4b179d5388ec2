package l7

import "encoding/binary"

const (
	tlsRecordHeaderLen    = 5
	tlsHandshakeHeaderLen = 4
	tlsMaxRecord          = 1 << 14 // TLSPlaintext.length limit, RFC 8446 §5.1
	tlsClientHello        = 1
	tlsExtServerName      = 0
	tlsNameTypeHostName   = 0
)

// ParseTLSClientHello returns the first host_name of the server_name extension of the
// ClientHello that starts b (a TLS record header, then the handshake message).
//
//   - No server_name extension, or a handshake message other than a ClientHello (a ServerHello
//     also starts 0x16 0x03): "" and no error.
//   - The snippet ends before the server name is reached: ErrTLSTruncated. So does a
//     ClientHello continued in a second record (the message is longer than its first record):
//     only the first record is read, where tshark would reassemble.
//   - A length that overruns the one enclosing it, a record that is not a handshake, or a
//     record length of 0 or above 2^14: ErrTLSBadRecord.
//
// The name is rendered by the ASCII rule and cut at 255 bytes (text.go).
func ParseTLSClientHello(b []byte) (sni string, err error) {
	if len(b) < 2 {
		return "", ErrTLSTruncated
	}
	if !LooksLikeTLSHandshake(b) {
		return "", ErrTLSBadRecord
	}
	if len(b) < tlsRecordHeaderLen+tlsHandshakeHeaderLen {
		return "", ErrTLSTruncated
	}
	recLen := int(binary.BigEndian.Uint16(b[3:]))
	if recLen < tlsHandshakeHeaderLen || recLen > tlsMaxRecord {
		return "", ErrTLSBadRecord
	}
	if b[5] != tlsClientHello {
		return "", nil
	}
	msgLen := int(b[6])<<16 | int(b[7])<<8 | int(b[8])
	start := tlsRecordHeaderLen + tlsHandshakeHeaderLen
	end := start + msgLen
	r := tlsReader{b: b[:min(len(b), tlsRecordHeaderLen+recLen, end)], pos: start, msgEnd: end}

	r.skip(2 + 32)  // client_version, random
	r.skip(r.u8())  // legacy_session_id
	r.skip(r.u16()) // cipher_suites
	r.skip(r.u8())  // legacy_compression_methods
	if r.err == nil && r.pos == end {
		return "", nil // no extensions block: allowed before TLS 1.3
	}
	extEnd := r.within(r.u16())
	for r.err == nil && r.pos < extEnd {
		typ, n := r.u16(), r.u16()
		bodyEnd := r.within(n)
		if r.err == nil && bodyEnd > extEnd {
			r.err = ErrTLSBadRecord
		}
		if r.err != nil || typ != tlsExtServerName {
			r.skip(n)
			continue
		}
		listEnd := r.within(r.u16())
		if r.err == nil && listEnd > bodyEnd {
			r.err = ErrTLSBadRecord
		}
		for r.err == nil && r.pos < listEnd {
			nameType, nameLen := r.u8(), r.u16()
			if r.err == nil && r.pos+nameLen > listEnd {
				r.err = ErrTLSBadRecord
			}
			name := r.bytes(nameLen)
			if r.err == nil && nameType == tlsNameTypeHostName {
				return asciiString(name), nil
			}
		}
		r.pos = bodyEnd // ignore anything after the list inside the extension
	}
	if r.err != nil {
		return "", r.err
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
