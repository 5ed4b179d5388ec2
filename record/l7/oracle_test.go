package l7

import (
	"encoding/hex"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
	"github.com/packetlake/packetlake/schema"
)

// The oracle test: every packet of the shared real captures goes through tshark and through our
// parsers, chosen by the same tests the kernel uses, and the values must agree.
//
// Deliberate differences, each handled below where it arises:
//   - We read only the first schema.SnippetHeadMax bytes of the payload. When what we need lies
//     beyond, we return a truncated error where tshark has the value ("cut" counts).
//   - tshark runs with TCP reassembly off, seeing one segment like the kernel does. With
//     reassembly on it dissects a message spread over segments in the last one (a ClientHello
//     or request headers split in two), which our parsers never see whole.
//   - tshark shows the root DNS name as "<Root>"; we store "".
//   - tshark 4.0 keeps trailing spaces and tabs of the Host value; we trim them (RFC 9110 §5.5).
//   - We cut TLS and HTTP strings at 255 bytes; the expected value is cut the same way.
//   - QUIC Initial packets carry a ClientHello that tshark decrypts (UDP 443); the kernel does not
//     send QUIC to the TLS parser, so those are skipped.

var pcapDir = testpcaps.Dir()

var oracleFields = []string{
	"frame.number", "frame.protocols",
	"udp.srcport", "udp.dstport", "udp.payload",
	"tcp.srcport", "tcp.dstport", "tcp.payload",
	"dns.id", "dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.count.answers",
	"tls.handshake.type", "tls.handshake.extensions_server_name",
	"http.request.method", "http.host", "http.request.uri",
}

type oracleRow map[string]string

// oracleCounts are the comparisons made; the test requires minimums so it cannot pass on
// captures that decode to nothing.
type oracleCounts struct {
	dnsMsgs, dnsNames, dnsCut        int
	tlsHellos, tlsSNIs, tlsCut       int
	tlsOther, tlsMissed              int
	httpReqs, httpHosts, httpCut     int
	httpMissed, encapsulated, frames int
}

func TestOracleTshark(t *testing.T) {
	var captures []string
	for _, dir := range []string{"tcpdump", "ja4"} {
		m, _ := filepath.Glob(filepath.Join(pcapDir, dir, "*.pcap*"))
		captures = append(captures, m...)
	}
	if len(captures) < 20 {
		t.Fatalf("found %d captures under %s, expected the shared tcpdump/ and ja4/ sets", len(captures), pcapDir)
	}
	var n oracleCounts
	for _, capture := range captures {
		name := filepath.Base(filepath.Dir(capture)) + "/" + filepath.Base(capture)
		for _, vals := range tsharkFields(t, capture, oracleFields) {
			row := oracleRow{}
			for i, f := range oracleFields {
				row[f] = vals[i]
			}
			n.frames++
			checkFrame(t, name+" frame "+row["frame.number"], row, &n)
		}
	}
	t.Logf("%d frames: DNS %d messages, %d names (%d cut by the snippet); "+
		"TLS %d ClientHellos, %d SNIs (%d cut), %d other handshakes, %d ClientHellos the kernel filter skips; "+
		"HTTP %d requests, %d hosts (%d cut), %d requests the kernel filter skips; %d in ICMP errors skipped",
		n.frames, n.dnsMsgs, n.dnsNames, n.dnsCut, n.tlsHellos, n.tlsSNIs, n.tlsCut, n.tlsOther, n.tlsMissed,
		n.httpReqs, n.httpHosts, n.httpCut, n.httpMissed, n.encapsulated)
	for _, m := range []struct {
		what      string
		got, want int
	}{
		{"DNS names", n.dnsNames, 80}, {"TLS SNIs", n.tlsSNIs, 100}, {"HTTP hosts", n.httpHosts, 8},
		{"HTTP requests", n.httpReqs, 10}, {"ClientHellos", n.tlsHellos, 100},
	} {
		if m.got < m.want {
			t.Errorf("only %d %s matched, want at least %d", m.got, m.what, m.want)
		}
	}
}

func checkFrame(t *testing.T, where string, row oracleRow, n *oracleCounts) {
	t.Helper()
	if strings.Contains(row["frame.protocols"], "icmp") {
		// A UDP header quoted in an ICMP error: the kernel records the ICMP packet, not DNS.
		if row["dns.id"] != "" {
			n.encapsulated++
		}
		return
	}
	udp, tcp := row["udp.srcport"] != "", row["tcp.srcport"] != ""
	var full []byte
	var err error
	switch {
	case udp:
		full, err = hex.DecodeString(row["udp.payload"])
	case tcp:
		full, err = hex.DecodeString(row["tcp.payload"])
	default:
		return
	}
	if err != nil {
		t.Fatalf("%s: payload hex: %v", where, err)
	}
	snip := full[:min(len(full), schema.SnippetHeadMax)]
	cut := len(full) > schema.SnippetHeadMax
	port53 := row["udp.srcport"] == "53" || row["udp.dstport"] == "53" ||
		row["tcp.srcport"] == "53" || row["tcp.dstport"] == "53"

	switch {
	case port53 && len(snip) > 0:
		checkDNS(t, where, row, snip, tcp, cut, n)
	case tcp && LooksLikeTLSClientHello(snip):
		checkTLS(t, where, row, snip, cut, n)
	case tcp && LooksLikeHTTPRequest(snip):
		checkHTTP(t, where, row, snip, cut, n)
	default:
		if tcp && row["tls.handshake.type"] == "1" {
			n.tlsMissed++
		}
		if tcp && row["http.request.method"] != "" {
			n.httpMissed++
		}
	}
}

func checkDNS(t *testing.T, where string, row oracleRow, snip []byte, overTCP, cut bool, n *oracleCounts) {
	got, err := ParseDNS(snip, overTCP)
	if row["dns.id"] == "" {
		return // not DNS to tshark either (a TCP segment without a message start)
	}
	n.dnsMsgs++
	want := DNS{
		ID:         uint16(parseUint(t, where, row["dns.id"])),
		IsResponse: row["dns.flags.response"] == "1",
		Answers:    uint16(parseUint(t, where, row["dns.count.answers"])),
		RCode:      got.RCode, // tshark shows the rcode of responses only
	}
	if row["dns.flags.rcode"] != "" {
		want.RCode = uint8(parseUint(t, where, row["dns.flags.rcode"]))
	}
	if qname := row["dns.qry.name"]; qname != "" {
		want.QName = qname
		if qname == "<Root>" {
			want.QName = ""
		}
		want.QType = uint16(parseUint(t, where, row["dns.qry.type"]))
	}
	if err == ErrDNSTruncated && cut {
		n.dnsCut++
		want.QName, want.QType = got.QName, got.QType
	} else if err != nil {
		t.Errorf("%s: ParseDNS: %v (tshark: %+v)", where, err, want)
	}
	if got != want {
		t.Errorf("%s: ParseDNS = %+v, tshark %+v", where, got, want)
	} else if row["dns.qry.name"] != "" && err == nil {
		n.dnsNames++
	}
}

func checkTLS(t *testing.T, where string, row oracleRow, snip []byte, cut bool, n *oracleCounts) {
	sni, err := ParseTLSClientHello(snip)
	switch row["tls.handshake.type"] {
	case "1":
		n.tlsHellos++
		want := capField(tsharkASCII(row["tls.handshake.extensions_server_name"]))
		if err == ErrTLSTruncated && cut {
			n.tlsCut++
			return
		}
		if sni != want || err != nil {
			t.Errorf("%s: ParseTLSClientHello = %q, %v; tshark %q", where, sni, err, want)
		} else if want != "" {
			n.tlsSNIs++
		}
	case "":
		// tshark did not see a handshake here (e.g. encrypted handshake records): only require
		// that we did not invent a name.
		if sni != "" {
			t.Errorf("%s: ParseTLSClientHello = %q where tshark sees no ClientHello", where, sni)
		}
	default:
		n.tlsOther++
		if sni != "" || err != nil {
			t.Errorf("%s: handshake type %s: ParseTLSClientHello = %q, %v; want \"\", nil",
				where, row["tls.handshake.type"], sni, err)
		}
	}
}

func checkHTTP(t *testing.T, where string, row oracleRow, snip []byte, cut bool, n *oracleCounts) {
	method, host, path, err := ParseHTTPRequest(snip)
	if row["http.request.method"] == "" {
		return
	}
	n.httpReqs++
	wantHost := capField(strings.TrimRight(tsharkASCII(row["http.host"]), " \t"))
	wantMethod := capField(tsharkASCII(row["http.request.method"]))
	wantPath := capField(tsharkASCII(row["http.request.uri"]))
	if err == ErrHTTPTruncated && cut && wantHost != "" && host == "" {
		n.httpCut++
		wantHost = ""
	} else if err == ErrHTTPTruncated && wantHost == "" && !headersEnd(snip) {
		// tshark shows no Host either: the segment holds the request line and part of the
		// headers, the rest follows in other segments.
	} else if err != nil {
		t.Errorf("%s: ParseHTTPRequest: %v", where, err)
	}
	if method != wantMethod || host != wantHost || path != wantPath {
		t.Errorf("%s: ParseHTTPRequest = %q, %q, %q; tshark %q, %q, %q",
			where, method, host, path, wantMethod, wantHost, wantPath)
	} else if wantHost != "" {
		n.httpHosts++
	}
}

func headersEnd(b []byte) bool {
	s := string(b)
	return strings.Contains(s, "\n\n") || strings.Contains(s, "\n\r\n")
}

func parseUint(t *testing.T, where, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		t.Fatalf("%s: tshark value %q: %v", where, s, err)
	}
	return v
}
