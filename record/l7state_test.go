package record

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/packetlake/packetlake/record/l7"
	"github.com/packetlake/packetlake/schema"
)

// A client Initial sealer written from RFC 9001 §5 and RFC 9369 §3, independent of l7's opener.
func expandLabel(secret []byte, label string, n int) []byte {
	full := "tls13 " + label
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(append(append(info, byte(len(full))), full...), 0)
	out, _ := hkdf.Expand(sha256.New, secret, string(info), n)
	return out
}

func sealInitial(t *testing.T, v2 bool, dcid, scid []byte, pn byte, frames []byte) []byte {
	salt, _ := hex.DecodeString("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
	prefix, typ := "quic ", byte(0xc0)
	version := uint32(1)
	if v2 {
		salt, _ = hex.DecodeString("0dede3def700a6db819381be6e269dcbf9bd2ed9")
		prefix, typ, version = "quicv2 ", 0xd0, 0x6b3343cf
	}
	initial, _ := hkdf.Extract(sha256.New, dcid, salt)
	client := expandLabel(initial, "client in", 32)
	key, iv, hp := expandLabel(client, prefix+"key", 16), expandLabel(client, prefix+"iv", 12), expandLabel(client, prefix+"hp", 16)
	for len(frames) < 1162 { // pad the datagram to 1200 bytes
		frames = append(frames, 0)
	}
	hdr := []byte{typ | 0x00} // 1-byte packet number
	hdr = binary.BigEndian.AppendUint32(hdr, version)
	hdr = append(append(hdr, byte(len(dcid))), dcid...)
	hdr = append(append(hdr, byte(len(scid))), scid...)
	hdr = append(hdr, 0)                                                      // no token
	hdr = binary.BigEndian.AppendUint16(hdr, 0x4000|uint16(1+len(frames)+16)) // length, 2-byte varint
	pnOff := len(hdr)
	hdr = append(hdr, pn)
	nonce := append([]byte(nil), iv...)
	nonce[11] ^= pn
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	pkt := gcm.Seal(append([]byte(nil), hdr...), nonce, frames, hdr)
	hpb, _ := aes.NewCipher(hp)
	var mask [16]byte
	hpb.Encrypt(mask[:], pkt[pnOff+4:pnOff+20])
	pkt[0] ^= mask[0] & 0x0f
	pkt[pnOff] ^= mask[1]
	return pkt
}

func cryptoFrame(off int, data []byte) []byte {
	f := []byte{0x06, 0x40 | byte(off>>8), byte(off), 0x40 | byte(len(data)>>8), byte(len(data))}
	return append(f, data...)
}

func testHello(t *testing.T) []byte {
	data, err := os.ReadFile("l7/testdata/payloads.tsv")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if c := strings.Split(strings.TrimSpace(line), "\t"); c[0] == "tls_client_hello" {
			b, _ := hex.DecodeString(c[2])
			return b[5:] // the handshake message, without the record header
		}
	}
	t.Fatal("no tls_client_hello")
	return nil
}

func quicPacket(ts int64, sport uint16, snippet []byte) (*Packet, Kernel) {
	p := &Packet{TS: ts, IPProto: 17, SrcPort: sport, DstPort: 443}
	p.SrcAddr[15], p.DstAddr[15] = 1, 2
	return p, Kernel{L7Kind: schema.L7QUIC, Snippet: snippet[:min(len(snippet), schema.SnippetMax)]}
}

// TestQUICHelloAcrossInitials: a ClientHello whose CRYPTO frames are split within a packet, out of
// order, and across two Initial packets (as current Chrome sends a post-quantum hello) is parsed
// in the packet that completes it, for QUIC v1 and v2; the first packet gets the QUIC columns only.
// Without state, the first packet's part gives what it holds.
func TestQUICHelloAcrossInitials(t *testing.T) {
	hello := testHello(t)
	const ja4 = "q13d1715h2_5b57614c22b0_3d5424432f57" // FoxIO's JA4 of tls12.pcap's hello, as QUIC
	dcid, scid := []byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{9, 9}
	for _, v2 := range []bool{false, true} {
		// Packet 1: bytes [100, 300) then [0, 100); packet 2: the rest.
		p1 := sealInitial(t, v2, dcid, scid, 0, append(append(cryptoFrame(100, hello[100:300]), 0, 0, 1), cryptoFrame(0, hello[:100])...))
		p2 := sealInitial(t, v2, dcid, scid, 1, cryptoFrame(300, hello[300:]))
		st := NewL7State()
		a, ka := quicPacket(1e9, 5000, p1)
		st.ParseL7(a, ka)
		b, kb := quicPacket(1e9+1e6, 5000, p2)
		st.ParseL7(b, kb)
		wantVersion := uint32(l7.QUICv1)
		if v2 {
			wantVersion = l7.QUICv2
		}
		if a.QUICVersion != wantVersion || a.QUICDCID != "0102030405060708" || a.QUICSCID != "0909" || a.TLSSNI != "" || a.ParseError != "" {
			t.Errorf("v2 %v, first Initial: %+v", v2, a)
		}
		if b.TLSSNI != "contile.services.mozilla.com" || b.TLSJA4 != ja4 || b.TLSALPN != "h2" || b.TLSVersionMax != 0x0304 || b.ParseError != "" {
			t.Errorf("v2 %v, second Initial: SNI %q JA4 %q ALPN %q version %#x error %q", v2, b.TLSSNI, b.TLSJA4, b.TLSALPN, b.TLSVersionMax, b.ParseError)
		}
		if st.Stats.QUICHellos != 1 || st.Stats.QUICReassembled != 1 || st.Pending() != 0 {
			t.Errorf("v2 %v: stats %+v, pending %d", v2, st.Stats, st.Pending())
		}
		// Without state: the first packet's 300 bytes hold the SNI but not the end of the hello.
		c, kc := quicPacket(1e9, 5000, p1)
		ParseL7(c, kc)
		if c.TLSSNI != "contile.services.mozilla.com" || c.TLSJA4 != "" {
			t.Errorf("v2 %v, stateless: SNI %q JA4 %q error %q", v2, c.TLSSNI, c.TLSJA4, c.ParseError)
		}
	}
}

// TestQUICStateBounded: connections that never complete are given up after QUICPendingTime or
// when QUICMaxConns others wait, and counted.
func TestQUICStateBounded(t *testing.T) {
	hello := testHello(t)
	st := NewL7State()
	first := func(ts int64, sport uint16) {
		p, k := quicPacket(ts, sport, sealInitial(t, false, []byte{1, 2, 3, 4, 5, 6, 7, byte(sport)}, nil, 0, cryptoFrame(0, hello[:200])))
		st.ParseL7(p, k)
	}
	first(0, 1)
	first(QUICPendingTime+1, 2) // the first connection has waited too long
	if st.Stats.QUICExpired != 1 || st.Pending() != 1 {
		t.Fatalf("after expiry: %+v, pending %d", st.Stats, st.Pending())
	}
	for i := range QUICMaxConns {
		first(QUICPendingTime+2, uint16(1000+i))
	}
	if st.Stats.QUICEvicted != 1 || st.Pending() != QUICMaxConns {
		t.Fatalf("after filling: %+v, pending %d", st.Stats, st.Pending())
	}
}
