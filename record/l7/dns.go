package l7

import "encoding/binary"

// DNS holds the fields of a DNS message stored in the dns_* columns.
type DNS struct {
	ID         uint16
	IsResponse bool
	QName      string // first question, dotted, no trailing dot; "" for the root (tshark: "<Root>")
	QType      uint16
	RCode      uint8 // the header's 4-bit RCODE (extended RCODE bits live in the OPT record)
	Answers    uint16
}

const (
	dnsHeaderLen = 12
	// dnsMaxName is RFC 1035's limit on a name's wire form (length octets included). tshark
	// shows "<Name too long>" past it; we return ErrDNSBadName.
	dnsMaxName = 255
	// dnsMaxHops bounds the compression pointers followed in one name, which ends loops. Real
	// names need one or two.
	dnsMaxHops = 16
)

// ParseDNS reads the header and the first question of the DNS message in b. overTCP means b
// starts with the 2-byte length prefix of DNS over TCP; the message is then read no further than
// that length.
//
// Header fields are returned whenever the 12-byte header is present, even with an error. QName
// and QType are set only when the name was read whole and valid (QName without QType if the
// snippet ends right after the name): a name cut mid-label would be a different name. A message
// without questions returns the header and no error.
func ParseDNS(b []byte, overTCP bool) (DNS, error) {
	var d DNS
	if overTCP {
		if len(b) < 2 {
			return d, ErrDNSTruncated
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n < len(b) {
			b = b[:n]
		}
	}
	if len(b) < dnsHeaderLen {
		return d, ErrDNSTruncated
	}
	flags := binary.BigEndian.Uint16(b[2:])
	d.ID = binary.BigEndian.Uint16(b)
	d.IsResponse = flags&0x8000 != 0
	d.RCode = uint8(flags & 0xf)
	d.Answers = binary.BigEndian.Uint16(b[6:])
	if binary.BigEndian.Uint16(b[4:]) == 0 {
		return d, nil
	}

	var raw [dnsMaxName]byte // dotted text of a valid name is at most 253 bytes
	name, next, err := readName(b, dnsHeaderLen, raw[:0])
	if err != nil {
		return d, err
	}
	d.QName = formatString(name)
	if next+2 > len(b) {
		return d, ErrDNSTruncated
	}
	d.QType = binary.BigEndian.Uint16(b[next:])
	return d, nil
}

// readName appends the dotted text of the name at msg[off:] to dst (raw label bytes, '.'
// between labels, nothing for the root) and returns it with the offset just past the name where
// it started (past its first pointer, if any).
//
// Compression pointers are followed anywhere after the header, forwards too (tshark 4.0 does;
// RFC 1035 wants "a prior occurrence" but the first question has nothing before it), at most
// dnsMaxHops of them: that bound is what ends a pointer loop. A pointer into the header is
// dns_bad_name (tshark reads the header bytes as labels); one beyond the snippet is
// dns_truncated, as its target may have been cut off.
func readName(msg []byte, off int, dst []byte) (name []byte, next int, err error) {
	next = -1
	wire := 1 // the terminating root label
	for hops := 0; ; {
		if off >= len(msg) {
			return nil, 0, ErrDNSTruncated
		}
		l := int(msg[off])
		switch l & 0xc0 {
		case 0x00:
			if l == 0 {
				if next < 0 {
					next = off + 1
				}
				return dst, next, nil
			}
			wire += 1 + l
			if wire > dnsMaxName {
				return nil, 0, ErrDNSBadName
			}
			if off+1+l > len(msg) {
				return nil, 0, ErrDNSTruncated
			}
			if len(dst) > 0 {
				dst = append(dst, '.')
			}
			dst = append(dst, msg[off+1:off+1+l]...)
			off += 1 + l
		case 0xc0:
			if off+2 > len(msg) {
				return nil, 0, ErrDNSTruncated
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			hops++
			if ptr < dnsHeaderLen || hops > dnsMaxHops {
				return nil, 0, ErrDNSBadName
			}
			if next < 0 {
				next = off + 2
			}
			off = ptr
		default: // 0x40 extended label types (RFC 6891 deprecated them) and reserved 0x80
			return nil, 0, ErrDNSBadName
		}
	}
}
