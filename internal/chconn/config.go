// Package chconn is packetlake's one way to reach ClickHouse: one Config (addresses, database,
// credentials, TLS) filled by the same flags everywhere, the native connection pool
// (clickhouse-go) and one HTTP client. The ingester's writers, schema apply, query, the detector,
// the launchers' readiness checks and the tests all connect through it, so they authenticate,
// use TLS and fail the same way.
package chconn

import (
	"crypto/tls"
	"fmt"

	"github.com/packetlake/packetlake/internal/tlsconf"
)

// tlsFlag is the prefix of the TLS flags, named in every TLS error.
const tlsFlag = "--clickhouse-tls"

// Config is how to reach ClickHouse. Each caller needs one address or both.
type Config struct {
	// Addr is the native-protocol address, host:port.
	Addr string
	// HTTPAddr is the HTTP interface, host:port.
	HTTPAddr string
	// Database is the default database of every statement ("": the server's default).
	Database string
	// User and Password authenticate ("": the server's default user).
	User, Password string
	// TLS is TLS on both the native protocol and HTTP (then https); zero: plaintext.
	TLS tlsconf.Files
}

// Validate reports a TLS setting that cannot work, naming the --clickhouse-tls flag to fix.
// Which addresses are required is the caller's to say.
func (c Config) Validate() error {
	if err := c.TLS.Validate(tlsFlag); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	return nil
}

// TLSConfig returns the client TLS configuration, nil when TLS is off.
func (c Config) TLSConfig() (*tls.Config, error) {
	tc, err := c.TLS.Config(tlsFlag)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	return tc, nil
}

// scheme is the URL scheme of the HTTP interface: "https" with TLS, else "http".
func (c Config) scheme() string {
	if c.TLS.Enable {
		return "https"
	}
	return "http"
}
