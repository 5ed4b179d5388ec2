package console

import (
	"fmt"
	"strings"
	"testing"
)

// TestTrafficByEnrichment groups the hand-made packets by the enrichment dimensions, with the
// migrations' own dictionaries filled the way packetlake enrich fills their tables: 10.0.0.0/24
// is FR and AS64500, 2001:db8::/32 DE and AS64501, 10.0.1.5 is in none; passive DNS names
// 10.0.0.1 and 10.0.0.2. Expected totals worked out from handPackets (packets × sample_rate).
func TestTrafficByEnrichment(t *testing.T) {
	f := newFixture(t, handPackets)
	f.exec(t, "INSERT INTO geoip_country VALUES (1, '10.0.0.0/24', 'FR', 'France'), (1, '2001:db8::/32', 'DE', 'Germany')")
	f.exec(t, "INSERT INTO geoip_asn VALUES (1, '10.0.0.0/24', 64500, 'Exemple SA'), (1, '2001:db8::/32', 64501, 'Beispiel GmbH')")
	f.exec(t, "INSERT INTO passive_dns VALUES ('::ffff:10.0.0.1', 'client.example', 'dns', '2026-12-06 10:00:00', '2026-12-06 10:00:00'), "+
		"('::ffff:10.0.0.2', 'old.example', 'sni', '2026-12-06 09:00:00', '2026-12-06 09:00:00'), "+
		"('::ffff:10.0.0.2', 'server.example', 'sni', '2026-12-06 10:00:00', '2026-12-06 10:00:00')")
	for _, d := range []string{"geoip_country_dict", "geoip_asn_dict", "passive_dns_dict"} {
		f.exec(t, "SYSTEM RELOAD DICTIONARY "+f.db+"."+d)
	}
	// 10.0.0.1: 1+1+10, 10.0.0.3: 4, 2001:db8::1: 2, 10.0.1.5: 1.
	eqTotals(t, "src_country", totals(f.traffic(t, with(twoHours, "dims", "src_country"))),
		map[string]uint64{"FR": 16, "DE": 2, "": 1})
	eqTotals(t, "src_asn", totals(f.traffic(t, with(twoHours, "dims", "src_asn"))),
		map[string]uint64{"AS64500 Exemple SA": 16, "AS64501 Beispiel GmbH": 2, "AS0 ": 1})
	eqTotals(t, "src_name", totals(f.traffic(t, with(twoHours, "dims", "src_name"))),
		map[string]uint64{"client.example": 12, "": 7})
	// The name seen last wins: server.example, not old.example.
	eqTotals(t, "dst_name, src_country", totals(f.traffic(t, with(twoHours, "dims", "dst_name,src_country"))),
		map[string]uint64{"server.example|FR": 16, "|DE": 2, "server.example|": 1})
	// The packets view gives each end's origin.
	var pr packetsResponse
	if code, body := f.get(t, "/api/v1/packets", with(twoHours, "filter", "src_addr = 10.0.0.1 AND dst_port = 443"), &pr); code != 200 {
		t.Fatalf("packets: %d %s", code, body)
	}
	if len(pr.Packets) != 3 {
		t.Fatalf("%d packets from 10.0.0.1 to 443, want 3", len(pr.Packets))
	}
	for _, p := range pr.Packets {
		got := fmt.Sprint(p["src_name"], "|", p["src_country"], "|", p["src_asn"], "|", p["src_as_org"], "|", p["dst_name"], "|", p["dst_country"])
		if want := "client.example|FR|64500|Exemple SA|server.example|FR"; got != want {
			t.Errorf("packet %v: origin %q, want %q", p["seq"], got, want)
		}
	}
	// A filter on the address narrows a grouping by country.
	eqTotals(t, "filtered", totals(f.traffic(t, with(twoHours, "dims", "src_country", "filter", "src_addr << 10.0.0.0/8"))),
		map[string]uint64{"FR": 16, "": 1})
}

// TestBrowserPacketOrigin: the packet details show where both ends come from, and the traffic
// view offers the enrichment dimensions, in the real browser.
func TestBrowserPacketOrigin(t *testing.T) {
	f := newFixture(t, handPackets)
	f.exec(t, "INSERT INTO geoip_country VALUES (1, '10.0.0.0/24', 'FR', 'France')")
	f.exec(t, "INSERT INTO passive_dns VALUES ('::ffff:10.0.0.2', 'server.example', 'sni', '2026-12-06 10:00:00', '2026-12-06 10:00:00')")
	for _, d := range []string{"geoip_country_dict", "passive_dns_dict"} {
		f.exec(t, "SYSTEM RELOAD DICTIONARY "+f.db+"."+d)
	}
	b := newBrowser(t, f.url)
	if s := b.open("/packets?from=2026-12-06T10:00:00Z&to=2026-12-06T10:00:30Z&filter=src_addr+%3D+10.0.0.1&sel=0"); s != "ready" {
		t.Fatalf("packets view: %s", s)
	}
	details := evalJS[string](b, `document.querySelector('[data-testid=details]').textContent`)
	for _, want := range []string{"Origin (GeoIP, passive DNS)", "src_countryFR", "dst_nameserver.example", "dst_countryFR"} {
		if !strings.Contains(details, want) {
			t.Errorf("details lack %q: %s", want, details)
		}
	}
	if strings.Contains(details, "null") {
		t.Errorf("details print an empty layer as null: %s", details)
	}
	b.screenshot("packets-origin")
	if s := b.open("/traffic?from=2026-12-06T10:00:00Z&to=2026-12-06T12:00:00Z&dims=src_country"); s != "ready" {
		t.Fatalf("traffic view: %s", s)
	}
	page := evalJS[string](b, `document.body.textContent`)
	for _, want := range []string{"Source country (GeoIP)", "FR"} {
		if !strings.Contains(page, want) {
			t.Errorf("traffic view grouped by src_country lacks %q", want)
		}
	}
	b.noErrors("packet origin")
}
