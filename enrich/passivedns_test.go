package enrich

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/test/analytics"
)

// pdnsKey is one row of passive_dns without its times.
type pdnsKey struct{ addr, name, source string }

type seen struct{ first, last time.Time }

// tsharkPassiveDNS is what tshark says passive DNS must hold for a capture: every DNS
// response's question name with each A/AAAA answer (answer section, class IN), every TLS
// ClientHello's SNI and every HTTP request's Host with the innermost destination address, and
// the first and last capture time of each. TCP reassembly is off: the kernel sees segments.
func tsharkPassiveDNS(t *testing.T, capture string, out map[pdnsKey]seen) {
	t.Helper()
	fields := []string{"frame.time_epoch", "frame.protocols", "ip.dst", "ipv6.dst", "udp.port", "tcp.port",
		"dns.flags.response", "dns.qry.name", "dns.count.answers", "dns.resp.type", "dns.resp.class", "dns.a", "dns.aaaa",
		"tls.handshake.type", "tls.handshake.extensions_server_name", "http.request", "http.host"}
	args := []string{"-n", "-r", capture, "-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields",
		"-E", "separator=\x1f", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", capture, err, stderr.String())
	}
	for line := range strings.Lines(stdout.String()) {
		v := strings.Split(strings.TrimSuffix(line, "\n"), "\x1f")
		f := map[string]string{}
		for i, name := range fields {
			f[name] = v[i]
		}
		protos := f["frame.protocols"]
		if strings.Contains(protos, "icmp") {
			continue // a quoted header in an ICMP error: the kernel records the ICMP packet
		}
		var ts time.Time
		var sec, frac int64
		if _, err := fmt.Sscanf(f["frame.time_epoch"], "%d.%d", &sec, &frac); err != nil {
			t.Fatalf("frame.time_epoch %q", f["frame.time_epoch"])
		}
		ts = time.Unix(sec, frac).UTC() // tshark prints 9 decimals
		// The innermost IP header is the last one named in frame.protocols.
		dst := last(f["ip.dst"])
		if strings.LastIndex(protos, ":ipv6") > strings.LastIndex(protos, ":ip:") {
			dst = last(f["ipv6.dst"])
		}
		add := func(addr, name, source string) {
			if name == "" || addr == "" {
				return
			}
			a := netip.MustParseAddr(addr).Unmap().String()
			k := pdnsKey{a, strings.TrimSuffix(strings.ToLower(name), "."), source}
			s, ok := out[k]
			if !ok || ts.Before(s.first) {
				s.first = ts
			}
			if ts.After(s.last) {
				s.last = ts
			}
			out[k] = s
		}
		if f["dns.flags.response"] == "1" && dnsPort(f["udp.port"]+","+f["tcp.port"]) {
			types, classes := split(f["dns.resp.type"]), split(f["dns.resp.class"])
			as, aaaas := split(f["dns.a"]), split(f["dns.aaaa"])
			var n, ia, i6 int
			fmt.Sscanf(f["dns.count.answers"], "%d", &n)
			qname := first(f["dns.qry.name"])
			for i := 0; i < n && i < len(types); i++ {
				in := i < len(classes) && classes[i] == "0x0001"
				switch types[i] {
				case "1":
					if in {
						add(as[ia], qname, "dns")
					}
					ia++
				case "28":
					if in {
						add(aaaas[i6], qname, "dns")
					}
					i6++
				}
			}
		}
		if slices.Contains(split(f["tls.handshake.type"]), "1") {
			add(dst, first(f["tls.handshake.extensions_server_name"]), "sni")
		}
		if f["http.request"] != "" {
			host := first(f["http.host"])
			if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
				host = h
			}
			if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil {
				add(dst, strings.TrimSpace(host), "http")
			}
		}
	}
}

func dnsPort(ports string) bool {
	return slices.ContainsFunc(split(ports), func(p string) bool { return p == "53" || p == "5353" || p == "5355" })
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func first(s string) string { v, _, _ := strings.Cut(s, ","); return v }

func last(s string) string { return s[strings.LastIndex(s, ",")+1:] }

// TestPassiveDNSFromCaptures: the shared real captures go through the BPF program and the
// decoder into packets; one passive DNS cycle must then hold exactly the (address, name,
// source) pairs tshark finds in the same captures, with tshark's first and last times.
func TestPassiveDNSFromCaptures(t *testing.T) {
	db, ch := migrated(t)
	captures, err := analytics.DecodeCaptures(testpcaps.Dir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := map[pdnsKey]seen{}
	for i, c := range captures {
		// Each capture is stored as its own collector run, so (host, collector_id, seq) stays unique.
		for j := range c.Packets {
			c.Packets[j].Host, c.Packets[j].CollectorID = "geo-dns-test", uint64(i+1)
		}
		if err := ch.InsertPackets(testCtx(t), c.Packets, ""); err != nil {
			t.Fatalf("insert %s: %v", c.Name, err)
		}
		tsharkPassiveDNS(t, filepath.Join(testpcaps.Dir(), c.Name), want)
	}

	cfg := DefaultConfig()
	cfg.ClickHouse = env.CHConfig(db)
	cfg.PassiveDNSInterval = time.Hour // one cycle, at Start
	cfg.PassiveDNSBackfill = 0         // the captures keep their own, old, timestamps
	e, err := New(cfg, Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	waitFor(t, "the first passive DNS cycle", func() (bool, error) {
		return testutil.ToFloat64(e.m.pdnsCycles)+testutil.ToFloat64(e.m.pdnsErrors) >= 1, nil
	})
	if n := testutil.ToFloat64(e.m.pdnsErrors); n != 0 {
		t.Fatalf("%v passive dns cycles failed", n)
	}
	rows, err := ch.Query(testCtx(t), `SELECT concat(IPv6NumToString(addr), '|', name, '|', source, '|',
		toString(toUnixTimestamp64Nano(min(first_seen))), '|', toString(toUnixTimestamp64Nano(max(last_seen))))
		FROM passive_dns GROUP BY addr, name, source`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[pdnsKey]seen{}
	for _, r := range rows {
		v := strings.Split(r, "|")
		var f, l int64
		fmt.Sscan(v[3], &f)
		fmt.Sscan(v[4], &l)
		got[pdnsKey{netip.MustParseAddr(v[0]).Unmap().String(), v[1], v[2]}] = seen{time.Unix(0, f).UTC(), time.Unix(0, l).UTC()}
	}
	counts := map[string]int{}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("tshark ties %s to %s (%s), passive_dns does not", k.name, k.addr, k.source)
		case !g.first.Equal(w.first) || !g.last.Equal(w.last):
			t.Errorf("%v: seen %v..%v, tshark %v..%v", k, g.first, g.last, w.first, w.last)
		default:
			counts[k.source]++
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("passive_dns ties %s to %s (%s), tshark does not", k.name, k.addr, k.source)
		}
	}
	t.Logf("passive_dns equals tshark: %d dns, %d sni, %d http pairs", counts["dns"], counts["sni"], counts["http"])
	// The shared captures hold 9, 48 and 9: fewer means something stopped being read.
	if counts["dns"] < 9 || counts["sni"] < 48 || counts["http"] < 9 {
		t.Errorf("too few pairs compared: %v", counts)
	}

	// The dictionary answers an address's name at query time.
	for k := range got {
		name, err := ch.Query(testCtx(t), fmt.Sprintf("SELECT dictGet('%s.passive_dns_dict', 'name', tuple(toIPv6('%s')))", db, k.addr))
		if err != nil || len(name) != 1 || name[0] == "" {
			t.Errorf("passive_dns_dict for %s: %q %v", k.addr, name, err)
		}
		break
	}
}

// TestPassiveDNSFailureCountedAndRetried: a cycle that fails (passive_dns gone) is logged,
// counted, and its window read again by the next cycle once the table is back; a server that
// does not answer makes Start fail with a clear error.
func TestPassiveDNSFailureCountedAndRetried(t *testing.T) {
	db, ch := migrated(t)
	cfg := DefaultConfig()
	cfg.ClickHouse = env.CHConfig(db)
	cfg.PassiveDNSInterval = 50 * time.Millisecond
	cfg.PassiveDNSBackfill = 0
	cfg.PassiveDNSOverlap = 0 // so only a window kept after its failure can still hold the packet below
	e, err := New(cfg, Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	ddl, err := ch.Query(testCtx(t), "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'passive_dns'")
	if err != nil || len(ddl) != 1 {
		t.Fatalf("read passive_dns DDL: %v %v", ddl, err)
	}
	if err := ch.Exec(testCtx(t), "DROP TABLE passive_dns SYNC SETTINGS check_table_dependencies = 0"); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now() // every cycle started from here on fails; one that succeeded ended before
	waitFor(t, "a failed cycle counted", func() (bool, error) { return testutil.ToFloat64(e.m.pdnsErrors) >= 1, nil })
	// A DNS answer captured at the drop, stored after failed cycles whose windows covered it:
	// without overlap, only a cycle that kept their window can read it.
	p := pkt("192.0.2.53", "10.0.0.1", 1, dropped)[0]
	p.IPProto, p.SrcPort, p.DNSIsResponse, p.DNSQName, p.DNSAnswers, p.DNSAnswerIPs = 17, 53, 1, "back.example", 1, "198.51.100.9"
	if err := ch.InsertPackets(testCtx(t), []record.Packet{p}, ""); err != nil {
		t.Fatal(err)
	}
	if err := ch.Exec(testCtx(t), strings.ReplaceAll(ddl[0], `\'`, `'`)); err != nil {
		t.Fatalf("re-create passive_dns: %v", err)
	}
	waitFor(t, "the name in passive_dns", func() (bool, error) {
		n, err := ch.Uint(testCtx(t), "SELECT count() FROM passive_dns WHERE name = 'back.example' AND addr = toIPv6('198.51.100.9')")
		return n == 1, err
	})

	down := cfg
	down.ClickHouse.HTTPAddr = testinfra.FreeAddr(t)
	e2, err := New(down, Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	err = e2.Start(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), down.ClickHouse.HTTPAddr) {
		t.Errorf("Start against a server that is down: %v, want an error naming %s", err, down.ClickHouse.HTTPAddr)
	}
	e2.Stop()
}
