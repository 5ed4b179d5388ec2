package query

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed reports/*.sql
var reportFiles embed.FS

// Report is a named SQL file of query/reports: the same text users can run by hand with
// clickhouse-client (--param_since, --param_until, --param_limit) or through `packetlake query`.
type Report struct {
	Name  string // file name without .sql
	Title string // the first comment line
	SQL   string
}

// Reports returns every report, sorted by name.
func Reports() []Report {
	entries, err := fs.Glob(reportFiles, "reports/*.sql")
	if err != nil {
		panic(err) // the pattern is a constant
	}
	var out []Report
	for _, path := range entries {
		b, err := reportFiles.ReadFile(path)
		if err != nil {
			panic(err)
		}
		sql := string(b)
		title, _, _ := strings.Cut(sql, "\n")
		out = append(out, Report{
			Name:  strings.TrimSuffix(strings.TrimPrefix(path, "reports/"), ".sql"),
			Title: strings.TrimSpace(strings.TrimPrefix(title, "--")),
			SQL:   sql,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ReportByName finds a report, or says which exist.
func ReportByName(name string) (Report, error) {
	var names []string
	for _, r := range Reports() {
		if r.Name == name {
			return r, nil
		}
		names = append(names, r.Name)
	}
	return Report{}, fmt.Errorf("no report %q; reports: %s", name, strings.Join(names, ", "))
}
