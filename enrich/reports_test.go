package enrich

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packetlake/packetlake/query"
	"github.com/packetlake/packetlake/record"
)

func pkt(src, dst string, n int, ts time.Time) []record.Packet {
	var out []record.Packet
	for i := range n {
		p := record.Packet{TS: ts.Add(time.Duration(i) * time.Millisecond).UnixNano(), Host: "geo-dns-test", Seq: uint64(i),
			PktLen: 100, IPProto: 6, SrcPort: 40000, DstPort: 443, SampleRate: 1, IPVersion: 4}
		p.SrcAddr = netip.MustParseAddr(src).As16()
		p.DstAddr = netip.MustParseAddr(dst).As16()
		out = append(out, p)
	}
	return out
}

// TestReportsShowEnrichment runs the reports that show enrichment over packets from addresses
// inside and outside the GeoIP test networks, with names from a DNS answer and a TLS SNI, and
// compares each row with the answer computed in Go from the same packets, MaxMind's reader
// over the same files and the names that were sent.
func TestReportsShowEnrichment(t *testing.T) {
	db, ch := migrated(t)
	dir := t.TempDir()
	for _, kind := range []string{"Country", "City", "ASN"} {
		writeMMDB(t, filepath.Join(dir, "GeoLite2-"+kind+".mmdb"), "GeoLite2-"+kind, countryNets)
	}
	base := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	var ps []record.Packet
	ps = append(ps, pkt("192.0.2.10", "10.0.0.1", 50, base)...)
	ps = append(ps, pkt("198.51.100.7", "10.0.0.1", 20, base)...)
	ps = append(ps, pkt("203.0.113.1", "10.0.0.1", 7, base)...)
	ps = append(ps, pkt("2001:db8:1::9", "2001:db8::1", 10, base)...)
	ps = append(ps, pkt("10.9.9.9", "2001:db8:1::9", 5, base)...)
	// A DNS response from 192.0.2.53 naming 198.51.100.7, and a ClientHello naming 2001:db8:1::9.
	dns := pkt("192.0.2.53", "10.0.0.1", 1, base)[0]
	dns.IPProto, dns.SrcPort, dns.DstPort = 17, 53, 33333
	dns.DNSIsResponse, dns.DNSQName, dns.DNSAnswers, dns.DNSAnswerIPs = 1, "www.example.net", 1, "198.51.100.7"
	hello := pkt("10.9.9.9", "2001:db8:1::9", 1, base.Add(time.Second))[0]
	hello.TLSSNI = "api.example.org"
	ps = append(ps, dns, hello)
	for i := range ps {
		ps[i].Seq = uint64(i)
	}
	if err := ch.InsertPackets(testCtx(t), ps, ""); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"198.51.100.7": "www.example.net", "2001:db8:1::9": "api.example.org"}

	cfg := DefaultConfig()
	cfg.ClickHouse = env.CHConfig(db)
	cfg.GeoIPDir = dir
	cfg.PassiveDNSInterval = time.Hour
	cfg.PassiveDNSBackfill = 0
	e, err := New(cfg, Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	waitFor(t, "the first passive DNS cycle", func() (bool, error) { return testutil.ToFloat64(e.m.pdnsCycles) >= 1, nil })

	geo := func(a string) mmRecord {
		c := lookup(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), a)
		as := lookup(t, filepath.Join(dir, "GeoLite2-ASN.mmdb"), a)
		c.ASN, c.Org = as.ASN, as.Org
		return c
	}
	type agg struct{ packets, bytes, sources uint64 }
	talkers := map[string]*agg{}
	for _, p := range ps {
		a := netip.AddrFrom16(p.SrcAddr).Unmap().String()
		if talkers[a] == nil {
			talkers[a] = &agg{}
		}
		talkers[a].packets++
		talkers[a].bytes += uint64(p.PktLen)
	}
	var wantTalkers, wantCountries, wantASNs []string
	countries, asns := map[string]*agg{}, map[string]*agg{}
	for a, g := range talkers {
		r := geo(a)
		wantTalkers = append(wantTalkers, fmt.Sprintf("%s|%s|%d|%s|%s|%d|%d", a, r.Country.ISOCode, r.ASN, r.Org, names[a], g.packets, g.bytes))
		ck := r.Country.ISOCode + "|" + r.Country.Names["en"]
		ak := fmt.Sprintf("%d|%s", r.ASN, r.Org)
		for m, k := range map[*map[string]*agg]string{&countries: ck, &asns: ak} {
			if (*m)[k] == nil {
				(*m)[k] = &agg{}
			}
			(*m)[k].packets += g.packets
			(*m)[k].bytes += g.bytes
			(*m)[k].sources++
		}
	}
	for k, g := range countries {
		wantCountries = append(wantCountries, fmt.Sprintf("%s|%d|%d|%d", k, g.packets, g.bytes, g.sources))
	}
	for k, g := range asns {
		wantASNs = append(wantASNs, fmt.Sprintf("%s|%d|%d|%d", k, g.packets, g.bytes, g.sources))
	}

	params := query.Params{Since: base.Add(-time.Hour), Until: base.Add(time.Hour), Limit: 1000}
	run := func(name string, cols ...string) []string {
		rep, err := query.ReportByName(name)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := query.RunSQL(testCtx(t), query.Config{ClickHouse: env.CHConfig(db)}, rep.SQL, params, "JSONEachRow", &out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var rows []string
		d := json.NewDecoder(&out)
		d.UseNumber()
		for d.More() {
			r := map[string]any{}
			if err := d.Decode(&r); err != nil {
				t.Fatal(err)
			}
			line := ""
			for i, c := range cols {
				if i > 0 {
					line += "|"
				}
				line += fmt.Sprint(r[c])
			}
			rows = append(rows, line)
		}
		return rows
	}
	for _, c := range []struct {
		report string
		cols   []string
		want   []string
	}{
		{"top_talkers", []string{"source", "country", "asn", "as_org", "name", "packets", "bytes"}, wantTalkers},
		{"top_countries", []string{"country", "country_name", "packets", "bytes", "sources"}, wantCountries},
		{"top_asns", []string{"asn", "as_org", "packets", "bytes", "sources"}, wantASNs},
	} {
		got := run(c.report, c.cols...)
		slices.Sort(got)
		slices.Sort(c.want)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.report, got, c.want)
		}
	}
	// top_conversations: the names of both ends.
	conv := run("top_conversations", "source", "destination", "src_country", "src_asn", "src_name", "dst_name")
	wantConv := "10.9.9.9|2001:db8:1::9||0||api.example.org"
	if !slices.Contains(conv, wantConv) {
		t.Errorf("top_conversations has no row %q: %q", wantConv, conv)
	}
	wantConv = "198.51.100.7|10.0.0.1|JP|64501|www.example.net|"
	if !slices.Contains(conv, wantConv) {
		t.Errorf("top_conversations has no row %q: %q", wantConv, conv)
	}
}
