package console

import (
	"context"
	"io"
	"regexp"
	"strconv"
	"time"
)

// Querier runs one read-only SELECT with bound parameters and per-query settings and returns
// ClickHouse's output (the SQL names its FORMAT). *chconn.Client is one; the console needs no
// more of ClickHouse than this.
type Querier interface {
	Query(ctx context.Context, sql string, params, settings map[string]string) (io.ReadCloser, error)
}

// Error is an error ClickHouse reported after the first rows were sent (in the body).
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return "clickhouse: " + e.Message }

var codeRE = regexp.MustCompile(`Code: (\d+)`)

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

// limitError reports whether err is ClickHouse refusing a query for its size (its message
// carries ClickHouse's "Code: N").
func limitError(err error) (string, bool) {
	if m := codeRE.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.Atoi(m[1])
		msg, ok := limitCodes[code]
		return msg, ok
	}
	return "", false
}
