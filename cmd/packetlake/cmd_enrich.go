package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/packetlake/packetlake/enrich"
)

func init() {
	register(subcommand{
		name:    "enrich",
		summary: "load GeoIP (.mmdb) databases into ClickHouse dictionaries and keep passive DNS (names of addresses from DNS answers, SNI, HTTP Host)",
		setup:   setupEnrich,
	})
}

func setupEnrich() (*flag.FlagSet, func(context.Context) error) {
	cfg := enrich.DefaultConfig()
	fs := flag.NewFlagSet("enrich", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: packetlake enrich --clickhouse-http HOST:PORT --database DB [--geoip-dir DIR | --geoip-country F --geoip-city F --geoip-asn F] [--passive-dns=false]\n\n"+
			"Copies MaxMind-format databases (GeoLite2/GeoIP2 Country, City, ASN, or IPinfo) into the\n"+
			"geoip_* tables behind ip_trie dictionaries, and again whenever a file changes (no restart);\n"+
			"every --passive-dns-interval ties the names of DNS answers, TLS SNI and HTTP Host to\n"+
			"addresses in passive_dns. Reports and the console show them next to addresses with dictGet.\n"+
			"GeoIP is off unless a file is given. Run one replica per database.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.ClickHouse.HTTPAddr, "clickhouse-http", cfg.ClickHouse.HTTPAddr, "ClickHouse HTTP interface, host:port")
	fs.StringVar(&cfg.ClickHouse.Database, "database", cfg.ClickHouse.Database, "database holding packets, migrated by this packetlake (migrations 0850-0852)")
	addClickHouseFlags(fs, &cfg.ClickHouse)
	fs.StringVar(&cfg.GeoIPCountry, "geoip-country", "", "country database (.mmdb: GeoLite2-Country, IPinfo country); empty: off (a --geoip-city file's countries are used)")
	fs.StringVar(&cfg.GeoIPCity, "geoip-city", "", "city database (.mmdb: GeoLite2-City); empty: off")
	fs.StringVar(&cfg.GeoIPASN, "geoip-asn", "", "AS number and organisation database (.mmdb: GeoLite2-ASN, IPinfo ASN); empty: off")
	fs.StringVar(&cfg.GeoIPDir, "geoip-dir", "", "directory with the .mmdb files, each found by \"country\", \"city\" or \"asn\" in its name (for the kinds not given one by one)")
	fs.DurationVar(&cfg.GeoIPCheck, "geoip-check", cfg.GeoIPCheck, "look at the GeoIP files this often; a changed file is loaded again")
	fs.BoolVar(&cfg.PassiveDNS, "passive-dns", cfg.PassiveDNS, "keep passive_dns from DNS answers, TLS SNI and HTTP Host")
	fs.DurationVar(&cfg.PassiveDNSInterval, "passive-dns-interval", cfg.PassiveDNSInterval, "run the passive DNS INSERT ... SELECT this often")
	fs.DurationVar(&cfg.PassiveDNSOverlap, "passive-dns-overlap", cfg.PassiveDNSOverlap, "each cycle re-reads this much before the previous one's end (packets stored late); later ones are missed")
	fs.DurationVar(&cfg.PassiveDNSBackfill, "passive-dns-backfill", cfg.PassiveDNSBackfill, "with passive_dns empty, the first cycle reads this far back (0: every stored packet)")
	fs.DurationVar(&cfg.QueryTimeout, "query-timeout", cfg.QueryTimeout, "bound on one statement (a GeoIP load's insert included)")
	metrics := addMetricsFlags(fs, ":9467")
	logf := addLogFlags(fs)
	return fs, func(ctx context.Context) error {
		if fs.NArg() > 0 {
			fs.Usage()
			return fmt.Errorf("unexpected arguments %q", fs.Args())
		}
		logger, err := logf.logger()
		if err != nil {
			return err
		}
		if w := clickHousePasswordWarning(cfg.ClickHouse.Password, cfg.ClickHouse.TLS.Enable, cfg.ClickHouse.HTTPAddr); w != "" {
			logger.Warn(w)
		}
		reg := newRegistry()
		e, err := enrich.New(cfg, enrich.Dependencies{Logger: logger, Registerer: reg})
		if err != nil {
			return err
		}
		return runDaemon(ctx, e, nil, "signal received: stopping", *metrics, reg, logger)
	}
}
