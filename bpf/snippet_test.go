package bpf

import (
	"bytes"
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// TestSnippetEveryLength: the snippet copy (snippet.h: 64-byte blocks, then 8-byte words, then
// 4, 2, 1 bytes by direct packet access; the helper when the payload leaves the linear part)
// must give the payload's first min(n, SnippetHeadMax) bytes for every payload length n up to
// past the cap, through both XDP programs and TC, behind headers of different lengths; and for a
// payload that starts in the linear part and continues in XDP fragments. A QUIC Initial is
// copied up to SnippetMax.
func TestSnippetEveryLength(t *testing.T) {
	e := newEnv(t, Config{})
	payload := func(n int) []byte { return cat([]byte("GET /"), fill(n, 3))[:n] }
	build := []struct {
		name  string
		frame func(pl []byte) []byte
	}{
		{"ipv4", func(pl []byte) []byte {
			return cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(tcp{sport: 40000, dport: 80, flags: 0x018}.build(pl)))
		}},
		{"vlan_ipv6_tcp_options", func(pl []byte) []byte {
			th := tcp{sport: 40000, dport: 80, flags: 0x018, opts: []byte{1, 1, 1, 1, 1, 1, 1, 0}}
			l3 := th.build(pl)
			h := ip6{hlim: 64, plen: -1, next: ipProto.TCP}
			_, first := h.chain()
			return cat(ether(0x86dd, tag{0x8100, 7}), h.build(first, l3))
		}},
	}
	runs := 0
	for _, b := range build {
		for n := 4; n <= schema.SnippetHeadMax+80; n++ { // "GET " at least: an HTTP request
			pl := payload(n)
			f := b.frame(pl)
			want := pl[:min(n, schema.SnippetHeadMax)]
			for hook, d := range map[string]decoded{
				"xdp":        e.run(t, f, false),
				"xdp_linear": e.runProg(t, e.o.objs.PlXdpLinear, f),
				"tc":         e.run(t, f, true),
			} {
				runs++
				if d.k.L7Kind != schema.L7HTTP || !bytes.Equal(d.k.Snippet, want) {
					t.Fatalf("%s, %d-byte payload, %s: l7_kind %d, snippet of %d bytes, want the payload's first %d",
						b.name, n, hook, d.k.L7Kind, len(d.k.Snippet), len(want))
				}
			}
		}
	}
	// 3.2 KB of extension headers: the payload starts in the linear part and runs into fragments.
	for _, n := range []int{200, 700, schema.SnippetHeadMax, 2000} {
		pl := payload(n)
		h := ip6{hlim: 64, plen: -1, next: ipProto.TCP, exts: []ext{{typ: ipProto.HOP, body: 1598}, {typ: ipProto.DST, body: 1598}}}
		chain, first := h.chain()
		f := cat(ether(0x86dd), h.build(first, cat(chain, tcp{sport: 40001, dport: 80, flags: 0x018}.build(pl))))
		d := e.run(t, f, false)
		runs++
		if want := pl[:min(n, schema.SnippetHeadMax)]; d.k.L7Kind != schema.L7HTTP || !bytes.Equal(d.k.Snippet, want) || d.p.ParseError != "" {
			t.Fatalf("payload at %d of a %d-byte frame, %d bytes: l7_kind %d, snippet of %d bytes (parse_error %q), want %d",
				len(f)-n, len(f), n, d.k.L7Kind, len(d.k.Snippet), d.p.ParseError, len(want))
		}
	}
	// QUIC client Initials: copied whole up to SnippetMax, linear or in fragments.
	quic := func(n int) []byte { return cat([]byte{0xc3, 0, 0, 0, 1, 8}, fill(n, 5))[:n] }
	for n := 8; n <= schema.SnippetMax+80; n++ {
		pl := quic(n)
		f := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.UDP}.build(udp{sport: 40000, dport: 443}.build(pl)))
		want := pl[:min(n, schema.SnippetMax)]
		for hook, d := range map[string]decoded{
			"xdp":        e.run(t, f, false),
			"xdp_linear": e.runProg(t, e.o.objs.PlXdpLinear, f),
			"tc":         e.run(t, f, true),
		} {
			runs++
			if d.k.L7Kind != schema.L7QUIC || !bytes.Equal(d.k.Snippet, want) {
				t.Fatalf("QUIC, %d-byte payload, %s: l7_kind %d, snippet of %d bytes, want the payload's first %d",
					n, hook, d.k.L7Kind, len(d.k.Snippet), len(want))
			}
		}
	}
	for _, n := range []int{700, schema.SnippetMax, 2000} {
		pl := quic(n)
		h := ip6{hlim: 64, plen: -1, next: ipProto.UDP, exts: []ext{{typ: ipProto.HOP, body: 1598}, {typ: ipProto.DST, body: 1598}}}
		chain, first := h.chain()
		f := cat(ether(0x86dd), h.build(first, cat(chain, udp{sport: 40001, dport: 443}.build(pl))))
		d := e.run(t, f, false)
		runs++
		if want := pl[:min(n, schema.SnippetMax)]; d.k.L7Kind != schema.L7QUIC || !bytes.Equal(d.k.Snippet, want) {
			t.Fatalf("QUIC payload in fragments, %d bytes: l7_kind %d, snippet of %d bytes, want %d", n, d.k.L7Kind, len(d.k.Snippet), len(want))
		}
	}
	t.Logf("%d frames checked", runs)
}
