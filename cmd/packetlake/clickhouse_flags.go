package main

import (
	"flag"

	"github.com/packetlake/packetlake/internal/chconn"
)

// addClickHouseFlags defines the credentials and TLS settings of c, shared by every subcommand
// that talks to ClickHouse (native protocol and HTTP alike); c.User is the default user. The
// addresses and the database differ by subcommand (required or not, default, help) and are
// defined by each.
func addClickHouseFlags(fs *flag.FlagSet, c *chconn.Config) {
	fs.StringVar(&c.User, "user", c.User, "ClickHouse user (empty: the server's default user)")
	fs.StringVar(&c.Password, "password", "", "ClickHouse password (prefer $PACKETLAKE_PASSWORD)")
	t := &c.TLS
	fs.BoolVar(&t.Enable, "clickhouse-tls", false, "connect to ClickHouse over TLS (native protocol and https)")
	fs.StringVar(&t.CAFile, "clickhouse-tls-ca", "", "PEM file of the CA that signed ClickHouse's certificate (default: system roots)")
	fs.StringVar(&t.CertFile, "clickhouse-tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&t.KeyFile, "clickhouse-tls-key", "", "PEM key of --clickhouse-tls-cert")
	fs.StringVar(&t.ServerName, "clickhouse-tls-server-name", "", "name to verify in ClickHouse's certificate (default: the address's host)")
	fs.BoolVar(&t.InsecureSkipVerify, "clickhouse-tls-insecure-skip-verify", false, "do not verify ClickHouse's certificate (tests only)")
}
