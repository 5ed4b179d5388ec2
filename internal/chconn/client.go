package chconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to ClickHouse's HTTP interface (https with TLS). Parameters travel as query
// parameters (param_x) and are bound by the server: nothing from the data or the flags is ever
// pasted into SQL. It is safe for concurrent use.
type Client struct {
	addr           string // HTTPAddr, named in errors
	base           string // scheme://addr/?
	database       string
	user, password string
	settings       map[string]string // sent with every statement
	http           *http.Client
}

// ClientOption tunes a Client.
type ClientOption func(*clientOptions)

type clientOptions struct {
	timeout  time.Duration
	tune     func(*http.Transport)
	settings map[string]string
}

// Timeout bounds each request, reading the response included (default: none; then bound
// requests with their context).
func Timeout(d time.Duration) ClientOption {
	return func(o *clientOptions) { o.timeout = d }
}

// Transport tunes the client's own transport, a copy of http.DefaultTransport (pool sizes,
// keep-alives). Without it and without TLS the client shares http.DefaultTransport.
func Transport(tune func(*http.Transport)) ClientOption {
	return func(o *clientOptions) { o.tune = tune }
}

// Settings are sent with every statement, before the statement's own settings.
func Settings(s map[string]string) ClientOption {
	return func(o *clientOptions) { o.settings = s }
}

// Client returns an HTTP client for HTTPAddr. Close it to let its idle connections go.
func (c Config) Client(opts ...ClientOption) (*Client, error) {
	if c.HTTPAddr == "" {
		return nil, errors.New("clickhouse: no HTTP address")
	}
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	var o clientOptions
	for _, f := range opts {
		f(&o)
	}
	rt := http.DefaultTransport
	if tc != nil || o.tune != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		if o.tune != nil {
			o.tune(t)
		}
		rt = t
	}
	return &Client{
		addr: c.HTTPAddr, base: c.scheme() + "://" + c.HTTPAddr + "/?",
		database: c.Database, user: c.User, password: c.Password, settings: o.settings,
		http: &http.Client{Timeout: o.timeout, Transport: rt},
	}, nil
}

// Query runs sql with params bound ({name:Type} in the SQL) and the statement's settings, and
// returns the response body (TabSeparated unless the statement or default_format says
// otherwise), which the caller reads and closes.
func (c *Client) Query(ctx context.Context, sql string, params, settings map[string]string) (io.ReadCloser, error) {
	return c.send(ctx, c.url("", params, settings), strings.NewReader(sql))
}

// Exec runs a statement that returns nothing worth reading.
func (c *Client) Exec(ctx context.Context, sql string, settings map[string]string) error {
	body, err := c.Query(ctx, sql, nil, settings)
	if err != nil {
		return err
	}
	return c.drain(body)
}

// Insert sends body as the data of sql, an INSERT ... FORMAT F (the statement travels in the
// URL). A setting insert_deduplication_token makes a retry of the same insert harmless.
func (c *Client) Insert(ctx context.Context, sql string, body io.Reader, settings map[string]string) error {
	resp, err := c.send(ctx, c.url(sql, nil, settings), body)
	if err != nil {
		return err
	}
	return c.drain(resp)
}

// Close lets the client's idle connections go.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// url is the request URL with the database, the client's and the statement's settings, the
// parameters, and sql when it is not the request body.
func (c *Client) url(sql string, params, settings map[string]string) string {
	q := url.Values{}
	if c.database != "" {
		q.Set("database", c.database)
	}
	for k, v := range c.settings {
		q.Set(k, v)
	}
	for k, v := range settings {
		q.Set(k, v)
	}
	for k, v := range params {
		q.Set("param_"+k, v)
	}
	if sql != "" {
		q.Set("query", sql)
	}
	return c.base + q.Encode()
}

// send POSTs body to u and returns the response body of a 200; any other status is an error
// with ClickHouse's message.
func (c *Client) send(ctx context.Context, u string, body io.Reader) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, fmt.Errorf("clickhouse at %s: %w", c.addr, err)
	}
	return c.do(req)
}

// do sends req with the client's credentials, as send does.
func (c *Client) do(req *http.Request) (io.ReadCloser, error) {
	if c.user != "" {
		req.Header.Set("X-ClickHouse-User", c.user)
		req.Header.Set("X-ClickHouse-Key", c.password)
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

// drain reads a response to its end, so its connection can be reused, and closes it.
func (c *Client) drain(body io.ReadCloser) error {
	_, err := io.Copy(io.Discard, body)
	body.Close()
	if err != nil {
		return fmt.Errorf("clickhouse at %s: read response: %w", c.addr, err)
	}
	return nil
}
