package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"

	"github.com/packetlake/packetlake/internal/chconn"
)

// addClickHouseFlags defines the credentials and TLS settings of c, shared by every subcommand
// that talks to ClickHouse (native protocol and HTTP alike); c.User is the default user. The
// addresses and the database differ by subcommand (required or not, default, help) and are
// defined by each.
func addClickHouseFlags(fs *flag.FlagSet, c *chconn.Config) {
	fs.StringVar(&c.User, "user", c.User, "ClickHouse user (empty: the server's default user)")
	fs.StringVar(&c.Password, "password", "", "ClickHouse password (prefer $PACKETLAKE_PASSWORD: the command line shows in ps)")
	t := &c.TLS
	fs.BoolVar(&t.Enable, "clickhouse-tls", false, "connect to ClickHouse over TLS (native protocol and https)")
	fs.StringVar(&t.CAFile, "clickhouse-tls-ca", "", "PEM file of the CA that signed ClickHouse's certificate (default: system roots)")
	fs.StringVar(&t.CertFile, "clickhouse-tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&t.KeyFile, "clickhouse-tls-key", "", "PEM key of --clickhouse-tls-cert")
	fs.StringVar(&t.ServerName, "clickhouse-tls-server-name", "", "name to verify in ClickHouse's certificate (default: the address's host)")
	fs.BoolVar(&t.InsecureSkipVerify, "clickhouse-tls-insecure-skip-verify", false, "do not verify ClickHouse's certificate (tests only)")
}

// clickHousePasswordWarning is a warning when a ClickHouse password would travel in clear: set,
// TLS off, and an address that is not loopback (a host name other than localhost counts as
// remote). "" when there is nothing to warn about.
func clickHousePasswordWarning(password string, tlsOn bool, addrs ...string) string {
	if password == "" || tlsOn {
		return ""
	}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || host == "localhost" {
			continue
		}
		return fmt.Sprintf("the ClickHouse password goes to %s without TLS, readable by anyone on the path: add --clickhouse-tls (and point at ClickHouse's secure ports)", a)
	}
	return ""
}
