package l7

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// JA4 is FoxIO's TLS client fingerprint (BSD 3-Clause; specification in FoxIO-LLC/ja4,
// technical_details/JA4.md). Written from the specification; FoxIO's own reference outputs for
// the shared captures are the oracle (ja4_test.go, testdata/ja4/). In short:
//
//	a: proto ('t' TCP, 'q' QUIC), version ("13", "12", "11", "10", "s3", "s2", "d1".."d3", else
//	   "00": highest non-GREASE supported_versions entry, else legacy_version), 'd' with a
//	   server_name extension else 'i', cipher and extension counts (GREASE left out, at most
//	   99, two digits), first and last character of the first ALPN value ("00" if none; the
//	   first and last hex digit of the value when either end byte is not alphanumeric)
//	b: sha256 of the sorted 4-hex-digit cipher list, comma-joined, first 12 hex digits
//	   ("000000000000" if there are none)
//	c: the same over the sorted extension list without server_name (0000) and ALPN (0010),
//	   then '_' and the signature algorithms in wire order if there are any
//
// GREASE values (RFC 8701: 0x?a?a with both bytes equal) are ignored everywhere.

// ja4Input collects the parts of a ClientHello that JA4 reads. It lives on the caller's stack:
// the fingerprint costs one allocation, its string.
type ja4Input struct {
	proto         byte
	legacyVersion uint16
	ciphers       []byte // cipher_suites, 2 bytes each
	exts          [ja4MaxList]uint16
	nExt          int // extensions seen, GREASE included; exts holds the first ja4MaxList
	sni           bool
	alpn          []byte // first protocol name
	versions      []byte // supported_versions list, 2 bytes each
	sigAlgs       []byte // signature_algorithms list, 2 bytes each
}

// ja4MaxList bounds the values hashed per list; a hello with more is not fingerprinted (no real
// client sends 128 cipher suites or extensions; the counts saturate at 99 anyway).
const ja4MaxList = 128

func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

func (f *ja4Input) addExtension(typ uint16, body []byte) {
	if f.nExt < ja4MaxList {
		f.exts[f.nExt] = typ
	}
	f.nExt++
	switch typ {
	case tlsExtServerName:
		f.sni = true
	case tlsExtALPN:
		// ProtocolNameList: u16 length, then u8-prefixed names.
		if len(body) >= 3 {
			n := int(body[2])
			if 3+n <= len(body) {
				f.alpn = body[3 : 3+n]
			}
		}
	case tlsExtSupportedVers:
		if len(body) >= 1 {
			f.versions = body[1:min(len(body), 1+int(body[0]))]
		}
	case tlsExtSigAlgs:
		if len(body) >= 2 {
			f.sigAlgs = body[2:min(len(body), 2+int(binary.BigEndian.Uint16(body)))]
		}
	}
}

// done fills h's ALPN, VersionMax and JA4 from a hello read to its end.
func (f *ja4Input) done(h *ClientHello) {
	h.VersionMax = f.legacyVersion
	if len(f.versions) >= 2 {
		var best uint16
		for i := 0; i+1 < len(f.versions); i += 2 {
			if v := binary.BigEndian.Uint16(f.versions[i:]); !isGREASE(v) && v > best {
				best = v
			}
		}
		h.VersionMax = best
	}
	if len(f.alpn) > 0 {
		h.ALPN = asciiString(f.alpn)
	}
	if f.nExt > ja4MaxList || len(f.ciphers) > 2*ja4MaxList || len(f.sigAlgs) > 2*ja4MaxList {
		return
	}

	// Sorting the values sorts their fixed-width lower-case hex renderings the same way.
	var ciphers, exts [ja4MaxList]uint16
	nc, ne, nExt := 0, 0, 0
	for i := 0; i+1 < len(f.ciphers); i += 2 {
		if v := binary.BigEndian.Uint16(f.ciphers[i:]); !isGREASE(v) {
			ciphers[nc] = v
			nc++
		}
	}
	for _, e := range f.exts[:f.nExt] {
		if isGREASE(e) {
			continue
		}
		nExt++
		if e != tlsExtServerName && e != tlsExtALPN {
			exts[ne] = e
			ne++
		}
	}
	slices.Sort(ciphers[:nc])
	slices.Sort(exts[:ne])

	var out [36]byte
	a := append(out[:0], f.proto)
	a = append(a, ja4Version(h.VersionMax)...)
	if f.sni {
		a = append(a, 'd')
	} else {
		a = append(a, 'i')
	}
	a = appendCount2(a, nc)
	a = appendCount2(a, nExt)
	a = appendALPN(a, f.alpn)
	a = append(a, '_')
	a = appendHash12(a, ciphers[:nc], nil)
	a = append(a, '_')
	a = appendHash12(a, exts[:ne], f.sigAlgs)
	h.JA4 = string(a)
}

func appendHex4(b []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf])
}

func appendCount2(b []byte, n int) []byte {
	n = min(n, 99)
	return append(b, '0'+byte(n/10), '0'+byte(n%10))
}

func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// appendALPN appends the first and last character of p, or of its hex rendering when either
// end byte is not alphanumeric, or "00" for no value.
func appendALPN(b, p []byte) []byte {
	if len(p) == 0 {
		return append(b, '0', '0')
	}
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return append(b, first, last)
	}
	const digits = "0123456789abcdef"
	return append(b, digits[first>>4], digits[last&0xf])
}

// appendHash12 appends the first 12 hex digits of sha256 of the values as comma-joined 4-digit
// hex, then '_' and the signature algorithms (GREASE left out) when there are any; twelve
// zeros for no values.
func appendHash12(b []byte, vals []uint16, sigAlgs []byte) []byte {
	if len(vals) == 0 {
		return append(b, "000000000000"...)
	}
	var buf [5 * 3 * ja4MaxList]byte
	s := buf[:0]
	for i, v := range vals {
		if i > 0 {
			s = append(s, ',')
		}
		s = appendHex4(s, v)
	}
	sep := byte('_')
	for i := 0; i+1 < len(sigAlgs); i += 2 {
		if v := binary.BigEndian.Uint16(sigAlgs[i:]); !isGREASE(v) {
			s = append(s, sep)
			s = appendHex4(s, v)
			sep = ','
		}
	}
	sum := sha256.Sum256(s)
	var hx [12]byte
	hex.Encode(hx[:], sum[:6])
	return append(b, hx[:]...)
}
