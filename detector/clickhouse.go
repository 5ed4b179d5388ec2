package detector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// chClient talks to ClickHouse over HTTP. Parameters travel as query parameters (param_x) and
// are bound by the server: nothing from the data or the flags is pasted into SQL.
type chClient struct {
	scheme         string // http or https
	addr, database string
	user, password string
	timeout        time.Duration
	http           *http.Client
}

func newCHClient(cfg Config) (*chClient, error) {
	tc, err := cfg.ClickHouseTLS.TLSConfig()
	if err != nil {
		return nil, err
	}
	return &chClient{
		scheme: cfg.ClickHouseTLS.Scheme(),
		addr:   cfg.ClickHouseHTTP, database: cfg.Database, user: cfg.User, password: cfg.Password,
		timeout: cfg.QueryTimeout,
		// No client timeout: each request carries a context deadline.
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute, TLSClientConfig: tc}},
	}, nil
}

// do sends one statement (sql in the body, or in the URL when body is set) and returns the
// response body, which the caller closes.
func (c *chClient) do(ctx context.Context, sql string, body io.Reader, settings map[string]string) (io.ReadCloser, error) {
	q := url.Values{}
	q.Set("database", c.database)
	q.Set("session_timezone", "UTC")
	q.Set("max_execution_time", strconv.Itoa(max(1, int(c.timeout.Seconds()))))
	for k, v := range settings {
		q.Set(k, v)
	}
	if body == nil {
		body = strings.NewReader(sql)
	} else {
		q.Set("query", sql)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.scheme+"://"+c.addr+"/?"+q.Encode(), body)
	if err != nil {
		return nil, err
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("clickhouse at %s: %w", c.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("clickhouse at %s: %s: %s", c.addr, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Body, nil
}

// selectRows runs a SELECT with params bound and calls fn with each row, its columns by name.
func (c *chClient) selectRows(ctx context.Context, sql string, params map[string]string, fn func(map[string]json.RawMessage) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	settings := map[string]string{
		"default_format": "JSONEachRow",
		"output_format_json_quote_64bit_integers": "0",
	}
	for k, v := range params {
		settings["param_"+k] = v
	}
	body, err := c.do(ctx, sql, nil, settings)
	if err != nil {
		return err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		row := map[string]json.RawMessage{}
		if err := json.Unmarshal(line, &row); err != nil {
			return fmt.Errorf("decode row %.200q: %w", line, err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return sc.Err()
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
	body, err := c.do(ctx, "INSERT INTO "+table+" FORMAT JSONEachRow", bytes.NewReader(rows), settings)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, body)
	return body.Close()
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
