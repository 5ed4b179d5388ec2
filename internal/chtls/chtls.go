// Package chtls holds packetlake's ClickHouse TLS settings, shared by every ClickHouse client
// (the ingester's native and HTTP connections, query, detect, schema apply), so they are set
// with the same flags and fail with the same messages.
package chtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config is how to reach ClickHouse over TLS. The zero value is plaintext.
type Config struct {
	// Enabled turns on TLS on both the native protocol and HTTP (then https). CAFile, when set,
	// replaces the system roots; CertFile and KeyFile add a client certificate (mutual TLS).
	// ServerName overrides the name checked in the server's certificate. InsecureSkipVerify
	// turns verification off: for tests only.
	Enabled            bool
	CAFile             string
	CertFile, KeyFile  string
	ServerName         string
	InsecureSkipVerify bool
}

// Validate reports the first setting that cannot work, naming the flag and the fix.
func (c Config) Validate() error {
	if !c.Enabled && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" || c.InsecureSkipVerify) {
		return errors.New("clickhouse: --clickhouse-tls-* options are set but --clickhouse-tls is off: add --clickhouse-tls")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("clickhouse: a client certificate needs both --clickhouse-tls-cert and --clickhouse-tls-key")
	}
	if c.InsecureSkipVerify && c.CAFile != "" {
		return errors.New("clickhouse: --clickhouse-tls-insecure-skip-verify ignores --clickhouse-tls-ca: drop one of them")
	}
	return nil
}

// Scheme is the URL scheme of ClickHouse's HTTP interface: "https" with TLS, else "http".
func (c Config) Scheme() string {
	if c.Enabled {
		return "https"
	}
	return "http"
}

// TLSConfig returns the client TLS configuration, nil when TLS is off.
func (c Config) TLSConfig() (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: --clickhouse-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("clickhouse: --clickhouse-tls-ca %s holds no PEM certificate: pass the CA's PEM file", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: --clickhouse-tls-cert/--clickhouse-tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
