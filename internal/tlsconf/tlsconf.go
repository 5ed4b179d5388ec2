// Package tlsconf is the one description of a TLS client's files and checks, embedded by both the
// ClickHouse and the Kafka connection settings so they load certificates the same way and fail
// with the same messages (Akvorado's helpers.TLSConfiguration is the model).
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"

	"fmt"
	"os"
)

// Files is how a client reaches a server over TLS. The zero value is plaintext.
type Files struct {
	// Enable turns TLS on. CAFile, when set, replaces the system roots; CertFile and KeyFile add
	// a client certificate (mutual TLS). ServerName overrides the name checked in the server's
	// certificate. InsecureSkipVerify turns verification off: for tests only.
	Enable             bool
	CAFile             string
	CertFile, KeyFile  string
	ServerName         string
	InsecureSkipVerify bool
}

// Validate reports the first setting that cannot work. flag is the flag prefix of the caller
// ("--clickhouse-tls", "--kafka-tls"), so the message names what the user typed.
func (f Files) Validate(flag string) error {
	if !f.Enable && (f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" || f.ServerName != "" || f.InsecureSkipVerify) {
		return fmt.Errorf("%s-* options are set but %s is off: add %s", flag, flag, flag)
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return fmt.Errorf("a client certificate needs both %s-cert and %s-key", flag, flag)
	}
	if f.InsecureSkipVerify && f.CAFile != "" {
		return fmt.Errorf("%s-insecure-skip-verify ignores %s-ca: drop one of them", flag, flag)
	}
	return nil
}

// Config returns the client TLS configuration, nil when TLS is off.
func (f Files) Config(flag string) (*tls.Config, error) {
	if err := f.Validate(flag); err != nil {
		return nil, err
	}
	if !f.Enable {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s-ca: %w", flag, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s-ca %s holds no PEM certificate: pass the CA's PEM file", flag, f.CAFile)
		}
		tc.RootCAs = pool
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s-cert/%s-key: %w", flag, flag, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
