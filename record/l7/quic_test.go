package l7

import (
	"path/filepath"
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// TestQUICInitialsFoxIOReference: every client Initial of the shared captures decrypts; the
// ClientHello its CRYPTO frames form (over several Initials of one connection when split) gives
// FoxIO's JA4 where FoxIO publishes one. Only the bytes the kernel copies are used.
func TestQUICInitialsFoxIOReference(t *testing.T) {
	want := readJA4Expected(t)
	quicWanted := 0
	for k := range want {
		if k.transport == "udp" {
			quicWanted++
		}
	}
	matched, hellos, initials := 0, 0, 0
	for _, name := range []string{"tls-handshake.pcapng", "quic-tls-handshake.pcapng", "tls-sni.pcapng"} {
		keys, payloads := helloPayloads(t, filepath.Join(pcapDir, "ja4", name))
		pending := map[string][]CryptoFragment{}
		for i, k := range keys {
			if k.transport != "udp" || !LooksLikeQUICInitial(payloads[i]) {
				continue
			}
			initials++
			q, err := ParseQUICInitial(payloads[i])
			if err != nil {
				t.Errorf("%v: %v", k, err)
				continue
			}
			conn := k.src + k.srcPort + k.dst + k.dstPort + q.DCIDHex()
			frags := append(pending[conn], q.Crypto...)
			stream := CryptoStream(frags, 1<<16)
			n := ClientHelloLen(stream)
			if n == 0 || len(stream) < n {
				pending[conn] = cloneFrags(frags)
				t.Logf("%v: %d crypto bytes of %d so far (complete packet %v)", k, len(stream), n, q.Complete)
				continue
			}
			delete(pending, conn)
			h, err := ParseClientHelloMessage(stream[:n], 'q')
			if err != nil {
				t.Errorf("%v: ClientHello: %v", k, err)
				continue
			}
			hellos++
			k.nth = 1
			if w, ok := want[k]; ok {
				if h.JA4 != w {
					t.Errorf("%v: JA4 %s, FoxIO %s", k, h.JA4, w)
				} else {
					matched++
				}
			} else {
				t.Logf("%v: %s SNI %q ALPN %q (no reference)", k, h.JA4, h.SNI, h.ALPN)
			}
		}
		for conn := range pending {
			t.Errorf("%s: connection %s never completed its ClientHello", name, conn)
		}
	}
	t.Logf("QUIC: %d client Initials, %d ClientHellos; %d of %d FoxIO references matched", initials, hellos, matched, quicWanted)
	if matched != quicWanted {
		t.Errorf("matched %d of %d", matched, quicWanted)
	}
	_ = schema.SnippetMax
}

func cloneFrags(f []CryptoFragment) []CryptoFragment {
	out := make([]CryptoFragment, len(f))
	for i, c := range f {
		out[i] = CryptoFragment{Offset: c.Offset, Data: append([]byte(nil), c.Data...)}
	}
	return out
}

// TestQUICv1KeysRFC9001: the Initial keys of RFC 9001 Appendix A.1 for DCID 0x8394c8f03e515708.
func TestQUICv1KeysRFC9001(t *testing.T) {
	dcid := []byte{0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08}
	key, iv, hp := quicInitialKeys(QUICv1, dcid)
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"key", key, "1f369613dd76d5467730efcbe3b1a22d"},
		{"iv", iv, "fa044b2f42a3fd3b46fb255c"},
		{"hp", hp, "9f50449e04a0e810283a1e9933adedd2"},
	} {
		if h := hexs(c.got); h != c.want {
			t.Errorf("v1 client %s %s, want %s", c.name, h, c.want)
		}
	}
	// RFC 9369 Appendix A.1: the same DCID under QUIC v2.
	key, iv, hp = quicInitialKeys(QUICv2, dcid)
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"key", key, "8b1a0bc121284290a29e0971b5cd045d"},
		{"iv", iv, "91f73e2351d8fa91660e909f"},
		{"hp", hp, "45b95e15235d6f45a6b19cbcb0294ba9"},
	} {
		if h := hexs(c.got); h != c.want {
			t.Errorf("v2 client %s %s, want %s", c.name, h, c.want)
		}
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, d[c>>4], d[c&15])
	}
	return string(out)
}
