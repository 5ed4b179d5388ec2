// Package query runs the named SQL reports of query/reports against ClickHouse over HTTP.
// Parameters travel as ClickHouse query parameters (param_since, ...), bound by the server:
// nothing a user types is ever pasted into SQL.
package query

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/packetlake/packetlake/internal/chtls"
)

// Config says where the packets live.
type Config struct {
	HTTPAddr string // ClickHouse HTTP interface, host:port
	Database string
	User     string
	Password string
	Client   *http.Client // nil: a client with a 60 s timeout (and ClickHouseTLS's TLS settings)
	// ClickHouseTLS is TLS to the HTTP interface (zero: plaintext http).
	ClickHouseTLS chtls.Config
}

// Params are a report's parameters.
type Params struct {
	Since, Until time.Time
	Limit        int
}

// Formats maps the --format values to ClickHouse output formats.
var Formats = map[string]string{
	"table": "PrettyCompactMonoBlock",
	"json":  "JSONEachRow",
	"csv":   "CSVWithNames",
}

// Run runs report name and copies ClickHouse's formatted output to w.
func Run(ctx context.Context, cfg Config, name string, p Params, format string, w io.Writer) error {
	rep, err := ReportByName(name)
	if err != nil {
		return err
	}
	chFormat, ok := Formats[format]
	if !ok {
		return fmt.Errorf("format %q: want table, json or csv", format)
	}
	return RunSQL(ctx, cfg, rep.SQL, p, chFormat, w)
}

// RunSQL runs one parameterised SELECT with the report parameters bound.
func RunSQL(ctx context.Context, cfg Config, sql string, p Params, chFormat string, w io.Writer) error {
	q := url.Values{}
	q.Set("database", cfg.Database)
	q.Set("default_format", chFormat)
	q.Set("param_since", p.Since.UTC().Format("2006-01-02 15:04:05.000000000"))
	q.Set("param_until", p.Until.UTC().Format("2006-01-02 15:04:05.000000000"))
	q.Set("param_limit", strconv.Itoa(p.Limit))
	q.Set("output_format_pretty_color", "0")
	q.Set("session_timezone", "UTC")
	u := cfg.ClickHouseTLS.Scheme() + "://" + cfg.HTTPAddr + "/?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(sql))
	if err != nil {
		return err
	}
	if cfg.User != "" {
		req.SetBasicAuth(cfg.User, cfg.Password)
	}
	client := cfg.Client
	if client == nil {
		tc, err := cfg.ClickHouseTLS.TLSConfig()
		if err != nil {
			return err
		}
		client = &http.Client{Timeout: 60 * time.Second}
		if tc != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = tc
			client.Transport = t
			defer t.CloseIdleConnections()
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("clickhouse at %s: %w", cfg.HTTPAddr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("clickhouse at %s: %s: %s", cfg.HTTPAddr, resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
