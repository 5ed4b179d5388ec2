package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Querier runs one read-only SELECT with bound parameters and per-query settings and returns
// ClickHouse's output (the SQL names its FORMAT). It is the console's only way to ClickHouse, so
// the shared connection package (issue 12's internal/chconn) can stand in for HTTPQuerier.
type Querier interface {
	Query(ctx context.Context, sql string, params, settings map[string]string) (io.ReadCloser, error)
}

// HTTPQuerier is a Querier over ClickHouse's HTTP interface. Parameters travel as param_<name>
// and are bound by the server.
type HTTPQuerier struct {
	BaseURL  string // http(s)://host:port
	Database string
	User     string
	Password string
	Client   *http.Client // nil: http.DefaultClient
}

// Error is an error ClickHouse returned for a statement, with its numeric code.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("clickhouse: code %d: %s", e.Code, e.Message) }

var codeRE = regexp.MustCompile(`Code: (\d+)`)

func (q *HTTPQuerier) Query(ctx context.Context, sql string, params, settings map[string]string) (io.ReadCloser, error) {
	v := url.Values{}
	v.Set("database", q.Database)
	v.Set("session_timezone", "UTC")
	for k, s := range settings {
		v.Set(k, s)
	}
	for k, s := range params {
		v.Set("param_"+k, s)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(q.BaseURL, "/")+"/?"+v.Encode(), strings.NewReader(sql))
	if err != nil {
		return nil, err
	}
	if q.User != "" {
		req.SetBasicAuth(q.User, q.Password)
	}
	client := q.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("clickhouse at %s: %w", q.BaseURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 8192))
		msg := strings.TrimSpace(string(body))
		e := &Error{Message: msg}
		if m := codeRE.FindStringSubmatch(msg); m != nil {
			e.Code, _ = strconv.Atoi(m[1])
		} else if c := resp.Header.Get("X-ClickHouse-Exception-Code"); c != "" {
			e.Code, _ = strconv.Atoi(c)
		}
		return nil, e
	}
	return resp.Body, nil
}

// Limits bound every console query, so that a console user cannot starve ingestion.
type Limits struct {
	MaxExecutionTime time.Duration // max_execution_time
	MaxResultRows    int           // max_result_rows (result_overflow_mode=throw)
	MaxMemoryUsage   int64         // max_memory_usage, bytes
}

// DefaultLimits are the limits when the flags are not given.
var DefaultLimits = Limits{MaxExecutionTime: 30 * time.Second, MaxResultRows: 1_000_000, MaxMemoryUsage: 2 << 30}

func (l Limits) settings() map[string]string {
	return map[string]string{
		"max_execution_time":   strconv.Itoa(max(1, int(l.MaxExecutionTime/time.Second))),
		"max_result_rows":      strconv.Itoa(l.MaxResultRows),
		"result_overflow_mode": "throw",
		"max_memory_usage":     strconv.FormatInt(l.MaxMemoryUsage, 10),
		"readonly":             "2",
	}
}

// ClickHouse error codes that mean "this query asked too much": the user narrows it.
var limitCodes = map[int]string{
	159: "the query ran longer than max_execution_time",
	160: "the query would run longer than max_execution_time",
	241: "the query needed more memory than max_memory_usage",
	396: "the result has more rows than max_result_rows",
	158: "the query read more rows than allowed",
}

// limitError reports whether err is ClickHouse refusing a query for its size.
func limitError(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) {
		m, ok := limitCodes[e.Code]
		return m, ok
	}
	return "", false
}
