package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"

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
