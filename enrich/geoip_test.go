package enrich

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packetlake/packetlake/test/analytics"
)

// geoNet is one network of a test database, MaxMind's layout.
type geoNet struct {
	prefix            string
	cc, country, city string
	sub               string
	lat, lon          float64
	asn               uint32
	org               string
}

// writeMMDB writes a MaxMind DB of dbType with the networks, through MaxMind's own writer, and
// renames it into place (as a database updater does) so a reader never sees half a file.
func writeMMDB(t testing.TB, path, dbType string, nets []geoNet) {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IncludeReservedNetworks: true, BuildEpoch: 1_800_000_000})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.prefix)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{}
		switch {
		case strings.HasSuffix(dbType, "ASN"):
			rec["autonomous_system_number"] = mmdbtype.Uint32(n.asn)
			rec["autonomous_system_organization"] = mmdbtype.String(n.org)
		default:
			rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(n.cc), "names": mmdbtype.Map{"en": mmdbtype.String(n.country)}}
			if strings.HasSuffix(dbType, "City") {
				rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(n.city)}}
				rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(n.sub)}}}
				rec["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(n.lat), "longitude": mmdbtype.Float64(n.lon)}
			}
		}
		if err := w.Insert(ipnet, rec); err != nil {
			t.Fatal(err)
		}
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// mmRecord is MaxMind's documented record layout, read by MaxMind's reader: the oracle.
type mmRecord struct {
	Country struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	Subdivisions []struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	ASN uint32 `maxminddb:"autonomous_system_number"`
	Org string `maxminddb:"autonomous_system_organization"`
}

func lookup(t *testing.T, path, addr string) mmRecord {
	t.Helper()
	db, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var r mmRecord
	if err := db.Lookup(netip.MustParseAddr(addr)).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// probes are addresses inside, at the edges of and outside the test networks, IPv4 and IPv6.
var probes = []string{"192.0.2.1", "192.0.2.255", "198.51.100.7", "198.51.100.200", "203.0.113.9",
	"10.1.2.3", "2001:db8::1", "2001:db8:ffff::9", "2001:db8:1:2::5", "2001:dc8::1"}

// dictAnswers are what ClickHouse's dictionaries answer for an address, in one text line.
func dictAnswers(t *testing.T, ch analytics.CH, db, addr string) string {
	t.Helper()
	rows, err := ch.Query(testCtx(t), fmt.Sprintf(`SELECT concat(
		dictGet('%[1]s.geoip_country_dict', 'country_code', a), '|', dictGet('%[1]s.geoip_country_dict', 'country', a), '|',
		dictGet('%[1]s.geoip_city_dict', 'city', a), '|', dictGet('%[1]s.geoip_city_dict', 'subdivision', a), '|',
		toString(dictGet('%[1]s.geoip_city_dict', 'latitude', a)), '|', toString(dictGet('%[1]s.geoip_city_dict', 'longitude', a)), '|',
		toString(dictGet('%[1]s.geoip_asn_dict', 'asn', a)), '|', dictGet('%[1]s.geoip_asn_dict', 'asn_org', a))
		FROM (SELECT toIPv6('%[2]s') AS a)`, db, addr))
	if err != nil || len(rows) != 1 {
		t.Fatalf("dictGet %s: %v %v", addr, rows, err)
	}
	return rows[0]
}

// oracleAnswers is the same line from MaxMind's reader over the files.
func oracleAnswers(t *testing.T, dir, addr string) string {
	c := lookup(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), addr)
	city := lookup(t, filepath.Join(dir, "GeoLite2-City.mmdb"), addr)
	asn := lookup(t, filepath.Join(dir, "GeoLite2-ASN.mmdb"), addr)
	sub := ""
	if len(city.Subdivisions) > 0 {
		sub = city.Subdivisions[0].Names["en"]
	}
	return fmt.Sprintf("%s|%s|%s|%s|%v|%v|%d|%s", c.Country.ISOCode, c.Country.Names["en"], city.City.Names["en"], sub,
		city.Location.Latitude, city.Location.Longitude, asn.ASN, asn.Org)
}

func checkAgainstReader(t *testing.T, ch analytics.CH, db, dir string) {
	t.Helper()
	for _, a := range probes {
		if got, want := dictAnswers(t, ch, db, a), oracleAnswers(t, dir, a); got != want {
			t.Errorf("%s: ClickHouse answers %q, MaxMind's reader %q", a, got, want)
		}
	}
}

var countryNets = []geoNet{
	{prefix: "192.0.2.0/24", cc: "FR", country: "France", city: "Paris", sub: "Île-de-France", lat: 48.8566, lon: 2.3522, asn: 64500, org: "Exemple SA"},
	{prefix: "198.51.100.0/25", cc: "JP", country: "Japan", city: "Tokyo", sub: "Tokyo", lat: 35.6762, lon: 139.6503, asn: 64501, org: "Rei KK"},
	{prefix: "203.0.113.0/24", cc: "BR", country: "Brazil", city: "São Paulo", sub: "São Paulo", lat: -23.5505, lon: -46.6333, asn: 64502, org: "Exemplo Ltda"},
	{prefix: "2001:db8::/32", cc: "DE", country: "Germany", city: "Berlin", sub: "Land Berlin", lat: 52.52, lon: 13.405, asn: 64503, org: "Beispiel GmbH"},
	{prefix: "2001:db8:1::/48", cc: "NZ", country: "New Zealand", city: "Wellington", sub: "Wellington", lat: -41.2865, lon: 174.7762, asn: 64504, org: "Tauira Ltd"},
}

// TestGeoIPLoadAndReload: three databases written by MaxMind's writer are loaded into the
// dictionaries, which answer like MaxMind's reader for addresses inside, at the edge of and
// outside the networks (a more specific IPv6 network included); a changed ASN file takes effect
// without a restart; a corrupt one is refused, counted, and the previous data stays in use.
func TestGeoIPLoadAndReload(t *testing.T) {
	db, ch := migrated(t)
	dir := t.TempDir()
	writeMMDB(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), "GeoLite2-Country", countryNets)
	writeMMDB(t, filepath.Join(dir, "GeoLite2-City.mmdb"), "GeoLite2-City", countryNets)
	writeMMDB(t, filepath.Join(dir, "GeoLite2-ASN.mmdb"), "GeoLite2-ASN", countryNets)

	cfg := DefaultConfig()
	cfg.ClickHouse = env.CHConfig(db)
	cfg.GeoIPDir = dir
	cfg.GeoIPCheck = 50 * time.Millisecond
	cfg.PassiveDNS = false
	reg := prometheus.NewRegistry()
	e, err := New(cfg, Dependencies{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	checkAgainstReader(t, ch, db, dir)
	if got := dictAnswers(t, ch, db, "2001:db8:1:2::5"); !strings.HasPrefix(got, "NZ|") {
		t.Errorf("the more specific 2001:db8:1::/48 lost to its /32: %q", got)
	}

	// A new ASN file: other organisations and one more network.
	changed := append([]geoNet(nil), countryNets...)
	for i := range changed {
		changed[i].org += " (renamed)"
	}
	changed = append(changed, geoNet{prefix: "10.0.0.0/8", asn: 64510, org: "Ten Networks"})
	writeMMDB(t, filepath.Join(dir, "GeoLite2-ASN.mmdb"), "GeoLite2-ASN", changed)
	waitFor(t, "the changed ASN database in the dictionary", func() (bool, error) {
		return strings.HasSuffix(dictAnswers(t, ch, db, "10.1.2.3"), "|64510|Ten Networks"), nil
	})
	checkAgainstReader(t, ch, db, dir)
	if n, err := ch.Uint(testCtx(t), "SELECT uniqExact(version) FROM geoip_asn"); err != nil || n != 1 {
		t.Errorf("geoip_asn holds %d loads (%v), want the newest only", n, err)
	}
	// The tree splits 2001:db8::/32 around its /48: 21 networks for 6 inserted.
	if n, err := ch.Uint(testCtx(t), "SELECT count() FROM geoip_loads WHERE kind = 'asn' AND networks = (SELECT count() FROM geoip_asn) AND networks = 21"); err != nil || n != 1 {
		t.Errorf("geoip_loads: %d loads of the ASN file recording the networks stored (%v), want 1", n, err)
	}
	if got := testutil.ToFloat64(e.m.geoLoads.WithLabelValues("asn")); got != 2 {
		t.Errorf("geoip_loads_total{asn} = %v, want 2", got)
	}

	// A corrupt file (an update cut short): refused and counted, the loaded data answers on.
	before := dictAnswers(t, ch, db, "198.51.100.7")
	if err := os.WriteFile(filepath.Join(dir, "GeoLite2-ASN.mmdb"), []byte("not a maxmind database"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the corrupt file counted", func() (bool, error) {
		return testutil.ToFloat64(e.m.geoErrors.WithLabelValues("asn")) >= 1, nil
	})
	if got := dictAnswers(t, ch, db, "198.51.100.7"); got != before {
		t.Errorf("after a corrupt file: %q, want the previous %q", got, before)
	}

	// A restart with the same files loads nothing again (the SHA-256 of the last load).
	writeMMDB(t, filepath.Join(dir, "GeoLite2-ASN.mmdb"), "GeoLite2-ASN", changed)
	e.Stop()
	e2, err := New(cfg, Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer e2.Stop()
	if n, err := ch.Uint(testCtx(t), "SELECT count() FROM geoip_loads"); err != nil || n != 4 {
		t.Errorf("geoip_loads has %d rows after a restart (%v), want 4: unchanged files are not loaded again", n, err)
	}
}

// TestGeoIPIPinfoLayout: IPinfo's flat records (country_code, country, asn "AS…", as_name), one
// file given as both the country and the ASN database, fill the same dictionaries.
func TestGeoIPIPinfoLayout(t *testing.T) {
	db, ch := migrated(t)
	path := filepath.Join(t.TempDir(), "ipinfo_lite.mmdb")
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "ipinfo country_asn.mmdb", RecordSize: 24, IncludeReservedNetworks: true, BuildEpoch: 1_800_000_000})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ prefix, cc, country, asn, org string }{
		{"192.0.2.0/24", "CH", "Switzerland", "AS64496", "Beispiel AG"},
		{"2001:db8::/32", "CA", "Canada", "AS64497", "Example Inc."},
	} {
		_, ipnet, _ := net.ParseCIDR(n.prefix)
		if err := w.Insert(ipnet, mmdbtype.Map{"country_code": mmdbtype.String(n.cc), "country": mmdbtype.String(n.country),
			"asn": mmdbtype.String(n.asn), "as_name": mmdbtype.String(n.org)}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := DefaultConfig()
	cfg.ClickHouse = env.CHConfig(db)
	cfg.GeoIPCountry, cfg.GeoIPASN = path, path
	cfg.PassiveDNS = false
	e, err := New(cfg, Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	for addr, want := range map[string]string{
		"192.0.2.77":   "CH|Switzerland|||0|0|64496|Beispiel AG",
		"2001:db8::42": "CA|Canada|||0|0|64497|Example Inc.",
		"198.51.100.1": "||||0|0|0|",
	} {
		if got := dictAnswers(t, ch, db, addr); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

// TestGeoIPCityFillsCountry: with a City database and no Country one, the country dictionary
// answers from the City file, as MaxMind's reader does from it.
func TestGeoIPCityFillsCountry(t *testing.T) {
	db, ch := migrated(t)
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	writeMMDB(t, path, "GeoLite2-City", countryNets)
	cfg := DefaultConfig()
	cfg.ClickHouse = env.CHConfig(db)
	cfg.GeoIPCity = path
	cfg.PassiveDNS = false
	e, err := New(cfg, Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	for _, a := range probes {
		r := lookup(t, path, a)
		want := fmt.Sprintf("%s|%s|%s|%v|%v", r.Country.ISOCode, r.Country.Names["en"], r.City.Names["en"], r.Location.Latitude, r.Location.Longitude)
		got := dictAnswers(t, ch, db, a)
		f := strings.Split(got, "|")
		if g := strings.Join([]string{f[0], f[1], f[2], f[4], f[5]}, "|"); g != want {
			t.Errorf("%s: ClickHouse %q, MaxMind's reader %q", a, g, want)
		}
	}
}
