package bpf

import (
	"bytes"
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// TestSnippetEveryLength: the snippet copy (snippet.h: 64-byte blocks, then 8-byte words, then
// 4, 2, 1 bytes by direct packet access; the helper when the payload leaves the linear part)
// must give the payload's first min(n, SnippetMax) bytes for every payload length n up to past
// the cap, through both XDP programs and TC, behind headers of different lengths; and for a
// payload that starts in the linear part and continues in XDP fragments.
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
		for n := 4; n <= schema.SnippetMax+80; n++ { // "GET " at least: an HTTP request
			pl := payload(n)
			f := b.frame(pl)
			want := pl[:min(n, schema.SnippetMax)]
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
	for _, n := range []int{200, 700, schema.SnippetMax, 2000} {
		pl := payload(n)
		h := ip6{hlim: 64, plen: -1, next: ipProto.TCP, exts: []ext{{typ: ipProto.HOP, body: 1598}, {typ: ipProto.DST, body: 1598}}}
		chain, first := h.chain()
		f := cat(ether(0x86dd), h.build(first, cat(chain, tcp{sport: 40001, dport: 80, flags: 0x018}.build(pl))))
		d := e.run(t, f, false)
		runs++
		if want := pl[:min(n, schema.SnippetMax)]; d.k.L7Kind != schema.L7HTTP || !bytes.Equal(d.k.Snippet, want) || d.p.ParseError != "" {
			t.Fatalf("payload at %d of a %d-byte frame, %d bytes: l7_kind %d, snippet of %d bytes (parse_error %q), want %d",
				len(f)-n, len(f), n, d.k.L7Kind, len(d.k.Snippet), d.p.ParseError, len(want))
		}
	}
	t.Logf("%d frames checked", runs)
}
