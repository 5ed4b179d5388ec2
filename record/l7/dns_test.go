package l7

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// dnsMsg builds a DNS message: header with the given id, flags and counts, then rest.
func dnsMsg(id, flags, qd, an uint16, rest ...[]byte) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], qd)
	binary.BigEndian.PutUint16(b[6:], an)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

// wireName encodes dotted labels; "" is the root.
func wireName(name string) []byte {
	var b []byte
	if name != "" {
		for l := range strings.SplitSeq(name, ".") {
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	return append(b, 0)
}

var qtypeA = []byte{0, 1, 0, 1} // QTYPE A, QCLASS IN

func withTCPPrefix(m []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...)
}

type dnsCase struct {
	name    string
	in      []byte
	overTCP bool
	want    DNS
	err     error
}

func dnsCases() []dnsCase {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "."
	return []dnsCase{
		{"query", dnsMsg(0x4319, 0x0100, 1, 0, wireName("www.tcpdump.org"), qtypeA), false,
			DNS{ID: 0x4319, QName: "www.tcpdump.org", QType: 1}, nil},
		{"nxdomain response", dnsMsg(7, 0x8183, 1, 0, wireName("nope.example"), []byte{0, 28, 0, 1}), false,
			DNS{ID: 7, IsResponse: true, RCode: 3, QName: "nope.example", QType: 28}, nil},
		{"answers counted", dnsMsg(8, 0x8180, 1, 2, wireName("a.b"), qtypeA), false,
			DNS{ID: 8, IsResponse: true, QName: "a.b", QType: 1, Answers: 2}, nil},
		{"root name", dnsMsg(1, 0, 1, 0, wireName(""), []byte{0, 2, 0, 1}), false,
			DNS{ID: 1, QName: "", QType: 2}, nil},
		{"no question", dnsMsg(2, 0x2800, 0, 0), false, DNS{ID: 2}, nil},
		{"forward pointer", dnsMsg(22, 0, 1, 0, []byte{0xc0, 18}, qtypeA, wireName("x")), false,
			DNS{ID: 22, QName: "x", QType: 1}, nil},
		{"over tcp", withTCPPrefix(dnsMsg(3, 0, 1, 0, wireName("x.org"), qtypeA)), true,
			DNS{ID: 3, QName: "x.org", QType: 1}, nil},
		{"253-byte name", dnsMsg(4, 0, 1, 0, wireName(long+strings.Repeat("d", 61)), qtypeA), false,
			DNS{ID: 4, QName: long + strings.Repeat("d", 61), QType: 1}, nil},
		{"only the first question", dnsMsg(5, 0, 2, 0, wireName("one"), qtypeA, wireName("two"), qtypeA), false,
			DNS{ID: 5, QName: "one", QType: 1}, nil},
		// A zero-length label is the root label: the name ends there and what follows is QTYPE.
		{"zero-length label mid-name", dnsMsg(6, 0, 1, 0, []byte("\x03www\x00\x03com\x00"), qtypeA), false,
			DNS{ID: 6, QName: "www", QType: 0x0363}, nil},
		{"dot and escapes in label", dnsMsg(9, 0, 1, 0, []byte("\x03a.b\x04\x00\t\\\xff\x00"), qtypeA), false,
			DNS{ID: 9, QName: "a.b.\\000\\t\\\uFFFD", QType: 1}, nil},

		{"empty", nil, false, DNS{}, ErrDNSTruncated},
		{"header cut", dnsMsg(1, 0, 1, 0)[:11], false, DNS{}, ErrDNSTruncated},
		{"tcp prefix only", []byte{0}, true, DNS{}, ErrDNSTruncated},
		{"name cut", dnsMsg(10, 0, 1, 0, wireName("www.example.com"))[:18], false,
			DNS{ID: 10}, ErrDNSTruncated},
		{"qtype cut", dnsMsg(11, 0, 1, 0, wireName("ab"), []byte{0}), false,
			DNS{ID: 11, QName: "ab"}, ErrDNSTruncated},
		{"oversized label length", dnsMsg(12, 0, 1, 0, []byte{63, 'a', 'b', 'c'}), false,
			DNS{ID: 12}, ErrDNSTruncated},
		{"tcp length shorter than name", append(binary.BigEndian.AppendUint16(nil, 14),
			dnsMsg(13, 0, 1, 0, wireName("abc"), qtypeA)...), true, DNS{ID: 13}, ErrDNSTruncated},
		{"254-byte name", dnsMsg(14, 0, 1, 0, wireName(long+strings.Repeat("d", 62)), qtypeA), false,
			DNS{ID: 14}, ErrDNSBadName},
		{"pointer to itself", dnsMsg(15, 0, 1, 0, []byte{0xc0, 12}, qtypeA), false,
			DNS{ID: 15}, ErrDNSBadName},
		{"compression loop", dnsMsg(16, 0, 1, 0, []byte("\x03www\xc0\x0c"), qtypeA), false,
			DNS{ID: 16}, ErrDNSBadName},
		{"pointer beyond snippet", dnsMsg(17, 0, 1, 0, []byte{0xc0, 200}, qtypeA), false,
			DNS{ID: 17}, ErrDNSTruncated},
		{"pointer into header", dnsMsg(18, 0, 1, 0, []byte{0xc0, 2}, qtypeA), false,
			DNS{ID: 18}, ErrDNSBadName},
		{"pointer cut", dnsMsg(19, 0, 1, 0, []byte{0xc0}), false, DNS{ID: 19}, ErrDNSTruncated},
		{"extended label type", dnsMsg(20, 0, 1, 0, []byte{0x41, 1, 2, 0}, qtypeA), false,
			DNS{ID: 20}, ErrDNSBadName},
		{"reserved label type", dnsMsg(21, 0, 1, 0, []byte{0x81, 1, 0}, qtypeA), false,
			DNS{ID: 21}, ErrDNSBadName},
	}
}

func TestParseDNS(t *testing.T) {
	for _, c := range dnsCases() {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseDNS(c.in, c.overTCP)
			if got != c.want || !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
				t.Errorf("ParseDNS = %+v, %v; want %+v, %v", got, err, c.want, c.err)
			}
		})
	}
}

// TestParseDNSPrefixes feeds every prefix of every well-formed message: none may panic, and each
// must give either the full result or ErrDNSTruncated — never a wrong answer or dns_bad_name.
func TestParseDNSPrefixes(t *testing.T) {
	type msg struct {
		name    string
		b       []byte
		overTCP bool
	}
	var msgs []msg
	for _, c := range dnsCases() {
		if c.err == nil {
			msgs = append(msgs, msg{c.name, c.in, c.overTCP})
		}
	}
	p := payloads(t)
	msgs = append(msgs, msg{"real query", p["dns_query"], false}, msg{"real response", p["dns_response"], false},
		msg{"real tcp response", p["dns_tcp_response"], true})
	for _, m := range msgs {
		full, err := ParseDNS(m.b, m.overTCP)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		for i := range len(m.b) {
			got, err := ParseDNS(m.b[:i], m.overTCP)
			switch {
			case err == nil && got != full:
				t.Errorf("%s[:%d] = %+v, want %+v", m.name, i, got, full)
			case err != nil && err != ErrDNSTruncated:
				t.Errorf("%s[:%d]: %v, want nil or %v", m.name, i, err, ErrDNSTruncated)
			}
		}
	}
}

// TestReadNamePointers checks pointer following where pointers are legal: names after the first
// question pointing back at earlier ones, and the bound on hops.
func TestReadNamePointers(t *testing.T) {
	// A chain: "foo" at 12, then names "x" + pointer to the previous name, each one more hop.
	msg := dnsMsg(0, 0, 0, 0, wireName("foo"))
	starts := []int{12}
	for range dnsMaxHops + 1 {
		starts = append(starts, len(msg))
		prev := starts[len(starts)-2]
		msg = append(msg, 1, 'x', 0xc0|byte(prev>>8), byte(prev))
	}
	for hops := 1; hops <= dnsMaxHops+1; hops++ {
		var buf [dnsMaxName]byte
		name, next, err := readName(msg, starts[hops], buf[:0])
		if hops > dnsMaxHops {
			if err != ErrDNSBadName {
				t.Errorf("%d hops: err %v, want %v", hops, err, ErrDNSBadName)
			}
			continue
		}
		want := strings.Repeat("x.", hops) + "foo"
		if err != nil || string(name) != want || next != starts[hops]+4 {
			t.Errorf("%d hops: %q, %d, %v; want %q, %d", hops, name, next, err, want, starts[hops]+4)
		}
	}
}
