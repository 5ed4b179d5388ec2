package l7

import (
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// QUIC Initial packets (RFC 9000 §17.2.2, RFC 9001 §5, QUIC v2: RFC 9369). A client's first
// flight carries its TLS ClientHello in CRYPTO frames of Initial packets, protected with keys
// anyone can derive from the Destination Connection ID the client chose: parsing them needs no
// secret. ParseQUICInitial removes the header protection, decrypts the payload and collects the
// CRYPTO frames; the ClientHello they form is parsed by ParseClientHelloMessage (JA4 'q').
//
// Decryption: the payload is AES-128-GCM. When the whole packet is in b it is opened with GCM
// and its tag checked (a packet that fails is ErrQUICBadPacket). A client Initial is padded to at
// least 1200 bytes, more than the kernel's snippet (schema.SnippetMax), so it usually is not:
// then the part present is decrypted as AES-CTR, which is what GCM's encryption is (counter
// starting at 2 after the 12-byte nonce), without the tag. Nothing authenticates such a
// plaintext; a wrong one (a packet that only looks like an Initial) fails the frame and
// ClientHello parsing instead.

const (
	QUICv1 = 0x00000001
	QUICv2 = 0x6b3343cf

	quicMaxCIDLen = 20
	quicMinDCID   = 8 // a client's first Initial: RFC 9000 §7.2
)

var (
	quicV1Salt = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	quicV2Salt = []byte{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9}
)

// LooksLikeQUICInitial is the test that selects the QUIC parser for a UDP payload: a long
// header (0x80) with the fixed bit (0x40), version 1 with packet type Initial (0b00) or version 2
// with Initial (0b01), and a Destination Connection ID of 8 to 20 bytes, as a client's first
// Initials have (a server's Initial echoes the client's Source Connection ID, often empty):
//
//	b[0]&0xf0 == 0xc0 && b[1:5] == 00 00 00 01, or b[0]&0xf0 == 0xd0 && b[1:5] == 6b 33 43 cf
//	&& 8 <= b[5] <= 20
func LooksLikeQUICInitial(b []byte) bool {
	if len(b) < 6 || b[5] < quicMinDCID || b[5] > quicMaxCIDLen {
		return false
	}
	switch binary.BigEndian.Uint32(b[1:]) {
	case QUICv1:
		return b[0]&0xf0 == 0xc0
	case QUICv2:
		return b[0]&0xf0 == 0xd0
	}
	return false
}

// CryptoFragment is the data of one CRYPTO frame at its offset in the Initial crypto stream.
type CryptoFragment struct {
	Offset uint64
	Data   []byte
}

// QUICInitial is what ParseQUICInitial read from a client Initial packet.
type QUICInitial struct {
	Version  uint32
	DCID     []byte
	SCID     []byte
	Crypto   []CryptoFragment // in packet order; Data aliases a buffer owned by the QUICInitial
	Complete bool             // the whole packet was in b (and its tag checked)
}

// DCIDHex and SCIDHex render the connection ids as the quic_dcid and quic_scid columns store
// them: lower-case hex, as tshark shows quic.dcid.
func (q *QUICInitial) DCIDHex() string { return hex.EncodeToString(q.DCID) }
func (q *QUICInitial) SCIDHex() string { return hex.EncodeToString(q.SCID) }

// ParseQUICInitial reads the client Initial packet that starts b (the first packet of a UDP
// datagram; coalesced packets after it are ignored). The header fields are returned as soon as
// they are read, also with an error: ErrQUICTruncated when b ends before the packet number and
// the 16-byte sample, ErrQUICBadPacket for a header that is not an Initial of QUIC v1 or v2, a
// length beyond the datagram or a packet that fails authentication. CRYPTO frames are collected
// from the decrypted part up to the first frame that is cut or not allowed in an Initial.
func ParseQUICInitial(b []byte) (QUICInitial, error) {
	var q QUICInitial
	if !LooksLikeQUICInitial(b) {
		return q, ErrQUICBadPacket
	}
	q.Version = binary.BigEndian.Uint32(b[1:])
	r := quicReader{b: b, pos: 5}
	q.DCID = r.bytes(int(r.u8()))
	scidLen := int(r.u8())
	if scidLen > quicMaxCIDLen {
		return q, ErrQUICBadPacket
	}
	q.SCID = r.bytes(scidLen)
	r.bytes(int(r.varint())) // token
	length := r.varint()
	if r.bad {
		return q, ErrQUICTruncated
	}
	pnOff := r.pos
	if length < 20 || length > 65535 {
		return q, ErrQUICBadPacket // too short to hold a 4-byte sample after the packet number
	}
	end := pnOff + int(length)
	if pnOff+4+16 > len(b) {
		return q, ErrQUICTruncated
	}
	key, iv, hp := quicInitialKeys(q.Version, q.DCID)

	// Header protection (RFC 9001 §5.4): the sample starts 4 bytes after the packet number.
	hpBlock, _ := aes.NewCipher(hp)
	var mask [16]byte
	hpBlock.Encrypt(mask[:], b[pnOff+4:pnOff+20])
	first := b[0] ^ mask[0]&0x0f
	pnLen := int(first&3) + 1
	hdr := make([]byte, pnOff+pnLen, min(end, len(b)))
	copy(hdr, b[:pnOff+pnLen])
	hdr[0] = first
	var pn uint64
	for i := range pnLen {
		hdr[pnOff+i] ^= mask[1+i]
		pn = pn<<8 | uint64(hdr[pnOff+i])
	}
	nonce := make([]byte, 12)
	copy(nonce, iv)
	for i := range 8 {
		nonce[4+i] ^= byte(pn >> (56 - 8*i))
	}
	block, _ := aes.NewCipher(key)
	var plain []byte
	if end <= len(b) {
		gcm, _ := cipher.NewGCM(block)
		var err error
		if plain, err = gcm.Open(hdr[len(hdr):len(hdr)], nonce, b[pnOff+pnLen:end], hdr); err != nil {
			return q, ErrQUICBadPacket
		}
		q.Complete = true
	} else {
		ct := b[pnOff+pnLen:]
		var ctr [16]byte
		copy(ctr[:], nonce)
		ctr[15] = 2 // GCM: counter 1 encrypts the tag, the payload starts at 2
		plain = make([]byte, len(ct))
		cipher.NewCTR(block, ctr[:]).XORKeyStream(plain, ct)
	}
	q.Crypto = quicCryptoFrames(plain, q.Crypto)
	return q, nil
}

// quicCryptoFrames walks the frames of a decrypted Initial payload (RFC 9000 §12.4: PADDING,
// PING, ACK, CRYPTO and CONNECTION_CLOSE are the frames an Initial may hold) and appends the
// CRYPTO frames' data. It stops at the end, at a cut frame (the data present of a cut CRYPTO
// frame is kept), or at any other frame type.
func quicCryptoFrames(p []byte, out []CryptoFragment) []CryptoFragment {
	r := quicReader{b: p}
	for !r.bad && r.pos < len(p) {
		switch typ := r.varint(); typ {
		case 0x00, 0x01: // PADDING, PING
		case 0x02, 0x03: // ACK, ACK with ECN counts
			r.varint() // largest acknowledged
			r.varint() // delay
			n := r.varint()
			r.varint() // first range
			for i := uint64(0); i < n && !r.bad; i++ {
				r.varint()
				r.varint()
			}
			if typ == 0x03 {
				r.varint()
				r.varint()
				r.varint()
			}
		case 0x06: // CRYPTO
			off, n := r.varint(), r.varint()
			if r.bad {
				return out
			}
			if avail := uint64(len(p) - r.pos); n > avail {
				if avail > 0 {
					out = append(out, CryptoFragment{Offset: off, Data: p[r.pos:]})
				}
				return out
			}
			if data := r.bytes(int(n)); len(data) > 0 {
				out = append(out, CryptoFragment{Offset: off, Data: data})
			}
		case 0x1c: // CONNECTION_CLOSE
			r.varint()
			r.varint()
			r.bytes(int(r.varint()))
		default:
			return out
		}
	}
	return out
}

// quicInitialKeys derives the client's Initial packet protection key, IV and header protection
// key from the client's Destination Connection ID (RFC 9001 §5.2; QUIC v2: RFC 9369 §3.3).
func quicInitialKeys(version uint32, dcid []byte) (key, iv, hp []byte) {
	salt, prefix := quicV1Salt, "quic "
	if version == QUICv2 {
		salt, prefix = quicV2Salt, "quicv2 "
	}
	initial, _ := hkdf.Extract(sha256.New, dcid, salt)
	client := hkdfExpandLabel(initial, "client in", 32)
	return hkdfExpandLabel(client, prefix+"key", 16), hkdfExpandLabel(client, prefix+"iv", 12), hkdfExpandLabel(client, prefix+"hp", 16)
}

// hkdfExpandLabel is TLS 1.3's HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
func hkdfExpandLabel(secret []byte, label string, n int) []byte {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	out, _ := hkdf.Expand(sha256.New, secret, string(info), n)
	return out
}

// quicReader reads QUIC fields, latching bad when b ends first.
type quicReader struct {
	b   []byte
	pos int
	bad bool
}

func (r *quicReader) bytes(n int) []byte {
	if r.bad || n < 0 || r.pos+n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[r.pos : r.pos+n]
	r.pos += n
	return v
}

func (r *quicReader) u8() byte {
	if v := r.bytes(1); v != nil {
		return v[0]
	}
	return 0
}

// varint reads a variable-length integer (RFC 9000 §16).
func (r *quicReader) varint() uint64 {
	if r.bad || r.pos >= len(r.b) {
		r.bad = true
		return 0
	}
	n := 1 << (r.b[r.pos] >> 6)
	v := r.bytes(n)
	if v == nil {
		return 0
	}
	x := uint64(v[0] & 0x3f)
	for _, c := range v[1:] {
		x = x<<8 | uint64(c)
	}
	return x
}

// CryptoStream returns the crypto stream's bytes from offset 0 as far as the fragments make it
// contiguous (fragments may come in any order and overlap), at most max bytes.
func CryptoStream(frags []CryptoFragment, max int) []byte {
	if len(frags) == 1 && frags[0].Offset == 0 {
		return frags[0].Data[:min(len(frags[0].Data), max)] // the common case: one frame
	}
	sorted := slices.Clone(frags)
	slices.SortFunc(sorted, func(a, b CryptoFragment) int { return cmp.Compare(a.Offset, b.Offset) })
	var out []byte
	for _, f := range sorted {
		end := f.Offset + uint64(len(f.Data))
		if f.Offset > uint64(len(out)) {
			break // a gap
		}
		if end > uint64(len(out)) {
			out = append(out, f.Data[uint64(len(out))-f.Offset:]...)
		}
		if len(out) >= max {
			return out[:max]
		}
	}
	return out
}

// ClientHelloLen returns the length of the handshake message that starts a crypto stream
// (header included), or 0 when fewer than 4 bytes are known.
func ClientHelloLen(stream []byte) int {
	if len(stream) < tlsHandshakeHeaderLen {
		return 0
	}
	return tlsHandshakeHeaderLen + (int(stream[1])<<16 | int(stream[2])<<8 | int(stream[3]))
}
