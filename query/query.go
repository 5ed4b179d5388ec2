// Package query runs the named SQL reports of query/reports against ClickHouse over HTTP.
// Parameters travel as ClickHouse query parameters (param_since, ...), bound by the server:
// nothing a user types is ever pasted into SQL.
package query

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
)

// Config says where the packets live: ClickHouse's HTTP interface (HTTPAddr) and Database.
type Config struct {
	ClickHouse chconn.Config
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
	client, err := cfg.ClickHouse.Client(chconn.Timeout(60 * time.Second))
	if err != nil {
		return err
	}
	defer client.Close()
	body, err := client.Query(ctx, sql, map[string]string{
		"since": p.Since.UTC().Format("2006-01-02 15:04:05.000000000"),
		"until": p.Until.UTC().Format("2006-01-02 15:04:05.000000000"),
		"limit": strconv.Itoa(p.Limit),
	}, map[string]string{
		"default_format":             chFormat,
		"output_format_pretty_color": "0",
		"session_timezone":           "UTC",
	})
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.Copy(w, body)
	return err
}
