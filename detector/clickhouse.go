package detector

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
)

// chClient is the detector's ClickHouse over HTTP: every statement bounded by QueryTimeout,
// on the client side (context) and on the server's (max_execution_time).
type chClient struct {
	*chconn.Client
	database string
	timeout  time.Duration
}

func newCHClient(cfg Config) (*chClient, error) {
	c, err := cfg.ClickHouse.Client(
		// No client timeout: each request carries a context deadline.
		chconn.Transport(func(t *http.Transport) { t.MaxIdleConnsPerHost, t.IdleConnTimeout = 16, time.Minute }),
		chconn.Settings(map[string]string{
			"session_timezone":   "UTC",
			"max_execution_time": strconv.Itoa(max(1, int(cfg.QueryTimeout.Seconds()))),
		}))
	if err != nil {
		return nil, err
	}
	return &chClient{Client: c, database: cfg.ClickHouse.Database, timeout: cfg.QueryTimeout}, nil
}

// selectRows runs a SELECT with params bound and calls fn with each row, its columns by name.
func (c *chClient) selectRows(ctx context.Context, sql string, params map[string]string, fn func(map[string]json.RawMessage) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.Rows(ctx, sql, params, fn)
}

// insertJSON inserts JSONEachRow lines into table. token, when set, is the insert's
// deduplication token: a retried insert with the same token is dropped by ClickHouse.
func (c *chClient) insertJSON(ctx context.Context, table string, rows []byte, token string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	settings := map[string]string{}
	if token != "" {
		settings["insert_deduplication_token"] = token
	}
	return c.Insert(ctx, "INSERT INTO "+table+" FORMAT JSONEachRow", bytes.NewReader(rows), settings)
}

// tableExists says whether database.table exists.
func (c *chClient) tableExists(ctx context.Context, table string) (bool, error) {
	n := 0
	err := c.selectRows(ctx, "SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {table:String}",
		map[string]string{"db": c.database, "table": table}, func(r map[string]json.RawMessage) error {
			return json.Unmarshal(r["n"], &n)
		})
	return n == 1, err
}
