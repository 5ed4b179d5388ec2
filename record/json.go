package record

import (
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/packetlake/packetlake/schema"
)

// jsonField appends one column's JSON value.
type jsonField struct {
	key    string // `"name":`, pre-quoted
	append func(b []byte, v reflect.Value) []byte
	index  int // field of Packet
}

// jsonFields are the columns in schema order, resolved once against Packet's col tags so
// a column added to the schema without a Packet field fails at start-up, not silently.
var jsonFields = mustJSONFields()

func mustJSONFields() []jsonField {
	t := reflect.TypeFor[Packet]()
	byCol := map[string]int{}
	for i := range t.NumField() {
		byCol[t.Field(i).Tag.Get("col")] = i
	}
	var out []jsonField
	for _, col := range schema.Columns {
		i, ok := byCol[col.Name]
		if !ok {
			panic(fmt.Sprintf("record: column %s has no Packet field", col.Name))
		}
		out = append(out, jsonField{key: strconv.Quote(col.Name) + ":", index: i, append: jsonAppender(col, t.Field(i).Type)})
	}
	return out
}

// jsonAppender picks how a column is written: the few columns whose stored form is not readable
// as is (time, MACs, addresses) get text; the rest follow their Go type.
func jsonAppender(col schema.Column, t reflect.Type) func([]byte, reflect.Value) []byte {
	switch {
	case col.Name == "ts":
		return func(b []byte, v reflect.Value) []byte {
			b = append(b, '"')
			b = time.Unix(0, v.Int()).UTC().AppendFormat(b, time.RFC3339Nano)
			return append(b, '"')
		}
	case col.Name == "src_mac" || col.Name == "dst_mac":
		return func(b []byte, v reflect.Value) []byte { return appendMAC(b, v.Uint()) }
	case col.CHType == "IPv6":
		return func(b []byte, v reflect.Value) []byte {
			var a [16]byte
			reflect.Copy(reflect.ValueOf(a[:]), v)
			b = append(b, '"')
			b = netip.AddrFrom16(a).Unmap().AppendTo(b)
			return append(b, '"')
		}
	}
	switch t.Kind() {
	case reflect.String:
		return func(b []byte, v reflect.Value) []byte { return appendJSONString(b, v.String()) }
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return func(b []byte, v reflect.Value) []byte { return strconv.AppendUint(b, v.Uint(), 10) }
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(b []byte, v reflect.Value) []byte { return strconv.AppendInt(b, v.Int(), 10) }
	}
	panic(fmt.Sprintf("record: no JSON form for column %s (%s)", col.Name, t))
}

// WriteJSON writes p as one JSON object on one line, keys = schema column names in schema
// order: ts as RFC 3339 with ns (UTC), MACs as aa:bb:cc:dd:ee:ff, addresses as text (IPv4
// unmapped), strings as strings, numbers as numbers.
func WriteJSON(w io.Writer, p *Packet) error {
	_, err := w.Write(AppendJSON(nil, p))
	return err
}

// AppendJSON is WriteJSON into a buffer (with the trailing newline), for callers that reuse one.
func AppendJSON(b []byte, p *Packet) []byte {
	v := reflect.ValueOf(p).Elem()
	b = append(b, '{')
	for i, f := range jsonFields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f.key...)
		b = f.append(b, v.Field(f.index))
	}
	return append(b, '}', '\n')
}

func appendMAC(b []byte, m uint64) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 5; i >= 0; i-- {
		o := byte(m >> (8 * i))
		b = append(b, hex[o>>4], hex[o&0xf])
		if i > 0 {
			b = append(b, ':')
		}
	}
	return append(b, '"')
}

// appendJSONString quotes s per RFC 8259. Unlike encoding/json it leaves <, > and & alone (an
// HTTP path stays readable); invalid UTF-8 (names off the wire) becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
