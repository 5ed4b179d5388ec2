package enrich

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
)

// Config configures an Enricher. Start from DefaultConfig.
type Config struct {
	// ClickHouse is where packets are and where the enrichment tables (migrations 0851, 0852)
	// live; the HTTP interface is used.
	ClickHouse chconn.Config

	// GeoIPCountry, GeoIPCity and GeoIPASN are MaxMind-format (.mmdb) files: GeoLite2/GeoIP2
	// Country, City and ASN, or IPinfo's country/ASN files. "" leaves that kind off. Without a
	// Country file, the City file's countries fill the country dictionary.
	GeoIPCountry, GeoIPCity, GeoIPASN string
	// GeoIPDir, when set, supplies the kinds not given one by one: the .mmdb file of the
	// directory whose name contains "country", "city" or "asn" (case-insensitive).
	GeoIPDir string
	// GeoIPCheck is how often the files are looked at (size and modification time); a changed
	// file whose content differs from the loaded one is loaded again, without a restart.
	GeoIPCheck time.Duration

	// PassiveDNS turns the passive_dns cycle on.
	PassiveDNS bool
	// PassiveDNSInterval is the period of the cycle: one INSERT ... SELECT over the packets
	// captured since the last one.
	PassiveDNSInterval time.Duration
	// PassiveDNSOverlap re-reads this much before the previous cycle's end, for rows that
	// reach ClickHouse late (ingest lag); reading twice is harmless (min/max aggregates).
	// Rows arriving later than this after their capture time are not read.
	PassiveDNSOverlap time.Duration
	// PassiveDNSBackfill bounds how far back the first cycle reads when passive_dns is empty;
	// 0 reads every packet stored (a capture replayed with its own old timestamps).
	PassiveDNSBackfill time.Duration

	// QueryTimeout bounds one statement (a GeoIP load's insert included).
	QueryTimeout time.Duration
}

// DefaultConfig is passive DNS on every minute, GeoIP off until a file is given.
func DefaultConfig() Config {
	return Config{
		ClickHouse:         chconn.Config{HTTPAddr: "127.0.0.1:8123", Database: "packetlake"},
		GeoIPCheck:         time.Minute,
		PassiveDNS:         true,
		PassiveDNSInterval: time.Minute,
		PassiveDNSOverlap:  5 * time.Minute,
		PassiveDNSBackfill: 24 * time.Hour,
		QueryTimeout:       5 * time.Minute,
	}
}

// Kinds of GeoIP database, in load order.
var geoKinds = []string{"country", "city", "asn"}

// Validate checks cfg and resolves GeoIPDir into the per-kind paths.
func (c *Config) Validate() error {
	if err := c.ClickHouse.Validate(); err != nil {
		return err
	}
	if c.ClickHouse.HTTPAddr == "" {
		return errors.New("enrich: no ClickHouse HTTP address")
	}
	if c.GeoIPDir != "" {
		found, err := scanGeoIPDir(c.GeoIPDir)
		if err != nil {
			return err
		}
		for kind, p := range found {
			if f := c.path(kind); *f == "" {
				*f = p
			}
		}
	}
	for _, kind := range geoKinds {
		if p := *c.path(kind); p != "" {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("enrich: --geoip-%s: %w", kind, err)
			}
		}
	}
	if c.geoEnabled() && c.GeoIPCheck <= 0 {
		return errors.New("enrich: --geoip-check must be positive")
	}
	if c.PassiveDNS && (c.PassiveDNSInterval <= 0 || c.PassiveDNSOverlap < 0 || c.PassiveDNSBackfill < 0) {
		return errors.New("enrich: --passive-dns-interval must be positive, --passive-dns-overlap and --passive-dns-backfill not negative")
	}
	if !c.PassiveDNS && !c.geoEnabled() {
		return errors.New("enrich: nothing to do: give --geoip-country, --geoip-city, --geoip-asn or --geoip-dir, or leave --passive-dns on")
	}
	if c.QueryTimeout <= 0 {
		return errors.New("enrich: --query-timeout must be positive")
	}
	return nil
}

func (c *Config) path(kind string) *string {
	switch kind {
	case "country":
		return &c.GeoIPCountry
	case "city":
		return &c.GeoIPCity
	}
	return &c.GeoIPASN
}

func (c *Config) geoEnabled() bool {
	return c.GeoIPCountry != "" || c.GeoIPCity != "" || c.GeoIPASN != ""
}

// scanGeoIPDir finds one .mmdb file per kind in dir by its name; two candidates for a kind is
// an error (which one is meant cannot be guessed).
func scanGeoIPDir(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.mmdb"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("enrich: --geoip-dir: %w", err)
	}
	found := map[string]string{}
	for _, f := range files {
		base := strings.ToLower(filepath.Base(f))
		for _, kind := range geoKinds {
			if !strings.Contains(base, kind) {
				continue
			}
			if prev, ok := found[kind]; ok {
				return nil, fmt.Errorf("enrich: --geoip-dir %s: both %s and %s look like the %s database: pass --geoip-%s", dir, filepath.Base(prev), filepath.Base(f), kind, kind)
			}
			found[kind] = f
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("enrich: --geoip-dir %s holds no .mmdb file named for country, city or asn", dir)
	}
	return found, nil
}
