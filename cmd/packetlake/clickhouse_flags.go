package main

import (
	"flag"

	"github.com/packetlake/packetlake/internal/chtls"
)

// addClickHouseTLSFlags defines the ClickHouse TLS settings shared by every subcommand that
// talks to ClickHouse (native protocol and HTTP alike).
func addClickHouseTLSFlags(fs *flag.FlagSet) *chtls.Config {
	c := &chtls.Config{}
	fs.BoolVar(&c.Enabled, "clickhouse-tls", false, "connect to ClickHouse over TLS (native protocol and https)")
	fs.StringVar(&c.CAFile, "clickhouse-tls-ca", "", "PEM file of the CA that signed ClickHouse's certificate (default: system roots)")
	fs.StringVar(&c.CertFile, "clickhouse-tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&c.KeyFile, "clickhouse-tls-key", "", "PEM key of --clickhouse-tls-cert")
	fs.StringVar(&c.ServerName, "clickhouse-tls-server-name", "", "name to verify in ClickHouse's certificate (default: the address's host)")
	fs.BoolVar(&c.InsecureSkipVerify, "clickhouse-tls-insecure-skip-verify", false, "do not verify ClickHouse's certificate (tests only)")
	return c
}
