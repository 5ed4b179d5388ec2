package bpf

import (
	"bytes"
	"testing"

	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// TestL7RulesMatchUserSpace: the kernel's l7_kind must follow package l7's byte tests exactly,
// including near misses and payloads shorter than a method.
func TestL7RulesMatchUserSpace(t *testing.T) {
	e := newEnv(t, Config{})
	var payloads [][]byte
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"} {
		full := m + " / HTTP/1.1\r\n\r\n"
		for n := 1; n <= len(m)+2; n++ {
			payloads = append(payloads, []byte(full[:n])) // every prefix, with and without the space
		}
		payloads = append(payloads, []byte(m+"X / HTTP/1.1\r\n"), bytes.ToLower([]byte(full)), []byte(m+"\t/"))
	}
	payloads = append(payloads, []byte{0x16}, []byte{0x16, 0x03}, []byte{0x16, 0x03, 0x01, 0, 5}, []byte{0x16, 0x03, 0x01, 0, 5, 1}, []byte{0x16, 0x03, 0x03, 0, 0x5a, 2, 0, 0, 0x56}, []byte{0x16, 0x02, 0x01},
		[]byte{0x17, 0x03, 0x03}, []byte{0x15, 0x03}, []byte("GE T / HTTP/1.1"), []byte(" GET /"))
	// The kernel's UDP and second-TLS rules, near misses included.
	quic := func(first byte, version uint32, dcidLen byte) []byte {
		b := []byte{first, byte(version >> 24), byte(version >> 16), byte(version >> 8), byte(version), dcidLen}
		return append(b, bytes.Repeat([]byte{0xaa}, 40)...)
	}
	for _, first := range []byte{0xc0, 0xc3, 0xd0, 0xd1, 0xe0, 0xf0, 0x80, 0x40} {
		for _, v := range []uint32{1, 0x6b3343cf, 0xff00001d, 0, 2} {
			for _, dl := range []byte{0, 7, 8, 20, 21} {
				payloads = append(payloads, quic(first, v, dl))
			}
		}
	}
	payloads = append(payloads, []byte{0xc0, 0, 0, 0, 1}, // shorter than the test
		[]byte("M-SEARCH * HTTP/1.1\r\n"), []byte("M-SEARCH"), []byte("M-SEARC"), []byte("M-SEARCh * HTTP/1.1"),
		[]byte("NOTIFY * HTTP/1.1\r\n"), []byte("NOTIFY "), []byte("NOTIFY"), []byte("NOTIFYX * HTTP/1.1"),
		[]byte{0x14, 0x03, 0x03, 0, 1, 1, 0x16, 0x03, 0x03, 0x01, 0x4b, 0x01}, []byte{0x14, 0x03, 0x03, 0, 1, 1, 0x17, 0x03},
		[]byte{0x14, 0x03, 0x03, 0, 2, 1, 0x16, 0x03}, []byte{0x14, 0x03, 0x03, 0, 1, 1, 0x16})
	for _, pl := range payloads {
		for _, proto := range []uint8{ipProto.TCP, ipProto.UDP} {
			for _, port := range []uint16{8080, 53, 443, 1900, 5353, 5355} {
				var l4 []byte
				if proto == ipProto.TCP {
					l4 = tcp{sport: 40000, dport: port, flags: 0x018}.build(pl)
				} else {
					l4 = udp{sport: 40000, dport: port}.build(pl)
				}
				f := cat(ether(0x0800), ip4{ttl: 64, proto: proto}.build(l4))
				d := e.run(t, f, false)
				want := record.ClassifyL7(proto, 40000, port, pl)
				if d.k.L7Kind != want {
					t.Errorf("payload %q, protocol %d, to port %d: l7_kind %d, user space says %d", pl, proto, port, d.k.L7Kind, want)
				}
				if want != schema.L7None && !bytes.Equal(d.k.Snippet, pl) {
					t.Errorf("payload %q: snippet %q", pl, d.k.Snippet)
				}
			}
		}
	}
}
