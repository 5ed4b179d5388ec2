package chconn

import (
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Open opens a clickhouse-go connection pool to Addr, on Database when set (the handshake
// fails while it does not exist: clear Database to create it). Dials time out after 5 s; tune
// changes any other option (timeouts, pool size, settings).
func (c Config) Open(tune ...func(*clickhouse.Options)) (driver.Conn, error) {
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	opts := &clickhouse.Options{
		Addr:        []string{c.Addr},
		Auth:        clickhouse.Auth{Database: c.Database, Username: c.User, Password: c.Password},
		DialTimeout: 5 * time.Second,
		TLS:         tc,
	}
	for _, f := range tune {
		f(opts)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", c.Addr, err)
	}
	return conn, nil
}
