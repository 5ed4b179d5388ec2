package l7

import (
	"unicode"
	"unicode/utf8"
)

// Rendering of packet bytes into column strings. Two rules, each copying what tshark 4.0 puts in
// the same field (checked against tshark by TestTsharkRendering), so that a value found with
// tshark can be looked up in ClickHouse as is:
//
//   - DNS names go through Wireshark's format_text: printable ASCII as is (including '.' and '\'
//     inside a label, so a label containing a dot is indistinguishable from two labels, exactly
//     as in tshark); other ASCII as C escapes (\a \b \f \n \r \t \v, else \ooo octal); UTF-8
//     decoded permissively (overlong forms accepted, invalid bytes, surrogates and code points
//     above U+10FFFF become U+FFFD); printable code points as UTF-8, non-printable ones (GLib's
//     definition: control, format, unassigned, surrogate) as \uXXXX or \UXXXXXXXX.
//   - TLS server names and HTTP fields are ASCII (Wireshark's ENC_ASCII): bytes 0x01-0x7f as
//     is, including control bytes; each byte 0x80-0xff becomes U+FFFD; a NUL byte ends the
//     value (tshark's strings are C strings).
//
// Both produce valid UTF-8.

// maxFieldLen caps TLS and HTTP strings, in bytes of the rendered value. Longer values are cut,
// never inside a UTF-8 sequence. A DNS name needs no cap: 253 bytes of text on the wire render
// to at most 4×253.
const maxFieldLen = 255

// asciiString renders b by the ASCII rule, cut at maxFieldLen bytes.
func asciiString(b []byte) string {
	plain := len(b) <= maxFieldLen
	for i := 0; plain && i < len(b); i++ {
		plain = b[i] != 0 && b[i] < utf8.RuneSelf
	}
	if plain {
		return string(b) // the common case: one allocation, no copy through a buffer
	}
	var buf [maxFieldLen]byte
	out := buf[:0]
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < utf8.RuneSelf {
			if len(out)+1 > maxFieldLen {
				break
			}
			out = append(out, c)
			continue
		}
		if len(out)+utf8.RuneLen(utf8.RuneError) > maxFieldLen {
			break
		}
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	return string(out)
}

// formatString renders b by Wireshark's format_text rule.
func formatString(b []byte) string {
	plain := true
	for i := 0; plain && i < len(b); i++ {
		plain = b[i] >= 0x20 && b[i] < 0x7f
	}
	if plain {
		return string(b)
	}
	var buf [1024]byte // each input byte renders to at most 4 bytes (\ooo); names are ≤ 253
	return string(appendFormatText(buf[:0], b))
}

// appendFormatText follows format_text_internal of Wireshark's epan/strutil.c, including its
// permissive UTF-8 decoding, so that odd names render to the same bytes.
func appendFormatText(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		i++
		if c >= 0x20 && c < 0x7f {
			dst = append(dst, c)
			continue
		}
		if c < 0x80 {
			dst = appendCEscape(dst, c)
			continue
		}
		var uc rune
		more, ok := 0, true
		switch {
		case c&0xe0 == 0xc0:
			more, uc = 1, rune(c&0x1f)
		case c&0xf0 == 0xe0:
			more, uc = 2, rune(c&0x0f)
		case c&0xf8 == 0xf0:
			more, uc = 3, rune(c&0x07)
		case c&0xfc == 0xf8: // obsolete 5- and 6-byte forms, decoded then rejected as > U+10FFFF
			more, uc = 4, rune(c&0x03)
		case c&0xfe == 0xfc:
			more, uc = 5, rune(c&0x01)
		default: // continuation byte, 0xfe or 0xff
			ok = false
		}
		for k := 0; ok && k < more; k++ {
			// A missing or non-continuation byte ends the sequence; that byte is read again as
			// the start of the next character.
			if i >= len(s) || s[i]&0xc0 != 0x80 {
				ok = false
				break
			}
			uc = uc<<6 | rune(s[i]&0x3f)
			i++
		}
		if !ok || uc >= 0x110000 || uc&^0x7ff == 0xd800 {
			uc = utf8.RuneError
		}
		if glibPrintable(uc) {
			dst = utf8.AppendRune(dst, uc)
		} else {
			dst = appendUnicodeEscape(dst, uc)
		}
	}
	return dst
}

// glibPrintable is g_unichar_isprint: everything except control, format, unassigned and surrogate
// code points. Go's tables stand in for GLib's; they differ only for code points assigned in one
// Unicode version and not the other.
func glibPrintable(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Co)
}

func appendCEscape(dst []byte, c byte) []byte {
	switch c {
	case '\a':
		return append(dst, '\\', 'a')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\v':
		return append(dst, '\\', 'v')
	}
	return append(dst, '\\', '0'+c>>6, '0'+c>>3&7, '0'+c&7)
}

const upperHex = "0123456789ABCDEF"

func appendUnicodeEscape(dst []byte, r rune) []byte {
	digits := 4
	if r > 0xffff {
		digits = 8
		dst = append(dst, '\\', 'U')
	} else {
		dst = append(dst, '\\', 'u')
	}
	for shift := (digits - 1) * 4; shift >= 0; shift -= 4 {
		dst = append(dst, upperHex[r>>shift&0xf])
	}
	return dst
}
