package analytics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const grafanaDir = "../../deployments/grafana"

// GrafanaQuery is one SQL text of a dashboard: a panel target or a variable's query.
type GrafanaQuery struct {
	Dashboard, Where, SQL string
	Table                 bool // format table (else time series)
}

type Dashboard struct {
	file       string
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string         `json:"name"`
			Type       string         `json:"type"`
			Datasource map[string]any `json:"datasource"`
			Query      struct {
				RawSQL string `json:"rawSql"`
			} `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title      string         `json:"title"`
	Type       string         `json:"type"`
	Datasource map[string]any `json:"datasource"`
	Panels     []panel        `json:"panels"` // collapsed rows
	Targets    []struct {
		RefID      string         `json:"refId"`
		Datasource map[string]any `json:"datasource"`
		EditorType string         `json:"editorType"`
		Format     *int           `json:"format"`
		QueryType  string         `json:"queryType"`
		RawSQL     string         `json:"rawSql"`
	} `json:"targets"`
}

// LoadDashboards reads every dashboard and checks what Grafana and the ClickHouse plugin need
// before any SQL runs: unique uids, every panel and target on the provisioned data source, SQL
// editor targets whose format matches their query type, variables defined before use. An empty
// dsUID accepts any data source uid.
func LoadDashboards(t testing.TB, dsUID string) ([]Dashboard, []GrafanaQuery) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards under %s/dashboards: %v", grafanaDir, err)
	}
	var dashes []Dashboard
	var queries []GrafanaQuery
	uids := map[string]string{}
	varRef := regexp.MustCompile(`\$\{?(\w+)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d Dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = filepath.Base(f)
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", d.file)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share the uid %s", d.file, other, d.UID)
		}
		uids[d.UID] = d.file
		defined := map[string]bool{}
		checkVars := func(where, sql string) {
			for _, m := range varRef.FindAllStringSubmatch(sql, -1) {
				if !strings.HasPrefix(m[1], "__") && !defined[m[1]] {
					t.Errorf("%s %s: uses variable $%s, which the dashboard does not define (before it)", d.file, where, m[1])
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			if uid, _ := v.Datasource["uid"].(string); dsUID != "" && uid != dsUID {
				t.Errorf("%s variable %s: data source %v, want uid %s", d.file, v.Name, v.Datasource, dsUID)
			}
			checkVars("variable "+v.Name, v.Query.RawSQL)
			queries = append(queries, GrafanaQuery{Dashboard: d.file, Where: "variable " + v.Name, SQL: v.Query.RawSQL, Table: true})
			defined[v.Name] = true
		}
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" || p.Type == "text" {
					continue
				}
				if uid, _ := p.Datasource["uid"].(string); dsUID != "" && uid != dsUID {
					t.Errorf("%s panel %q: data source %v, want uid %s", d.file, p.Title, p.Datasource, dsUID)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s panel %q has no query", d.file, p.Title)
				}
				for _, tg := range p.Targets {
					where := fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)
					if uid, _ := tg.Datasource["uid"].(string); dsUID != "" && uid != dsUID || tg.Datasource["type"] != "grafana-clickhouse-datasource" {
						t.Errorf("%s %s: data source %v", d.file, where, tg.Datasource)
					}
					if tg.EditorType != "sql" || strings.TrimSpace(tg.RawSQL) == "" || tg.Format == nil {
						t.Errorf("%s %s: want editorType sql, a format and rawSql", d.file, where)
						continue
					}
					if (*tg.Format == 0) != (tg.QueryType == "timeseries") || (*tg.Format == 1) != (tg.QueryType == "table") {
						t.Errorf("%s %s: format %d with queryType %q", d.file, where, *tg.Format, tg.QueryType)
					}
					if p.Type == "timeseries" && tg.QueryType != "timeseries" {
						t.Errorf("%s %s: a time series panel with a %s query", d.file, where, tg.QueryType)
					}
					checkVars(where, tg.RawSQL)
					queries = append(queries, GrafanaQuery{Dashboard: d.file, Where: where, SQL: tg.RawSQL, Table: *tg.Format == 1})
				}
			}
		}
		walk(d.Panels)
		dashes = append(dashes, d)
	}
	return dashes, queries
}

// GrafanaVars are the dashboard variables' values for one run: absent or empty means All.
type GrafanaVars map[string][]string

// ExpandGrafana does what Grafana and the ClickHouse plugin do to a query before ClickHouse sees
// it, for a time range, an interval and variable values: the frontend's $__conditionalAll and
// variable interpolation, then the backend macros (pkg/macros of grafana/clickhouse-datasource:
// $__timeFilter, $__timeFilter_ms, $__dateFilter, $__timeInterval, $__timeInterval_ms,
// $__fromTime, $__toTime, $__fromTime_ms, $__toTime_ms, $__interval_s). Anything left starting
// with $ is an error: Grafana would send it as is.
func ExpandGrafana(sql string, from, to time.Time, intervalS int, vars GrafanaVars) (string, error) {
	dt := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	dt64 := func(t time.Time) string { return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli()) }
	date := func(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.UTC().Format("2006-01-02")) }
	macros := map[string]func(args []string) (string, error){
		"conditionalAll": func(a []string) (string, error) {
			if len(a) != 2 || !strings.HasPrefix(a[1], "$") {
				return "", fmt.Errorf("$__conditionalAll wants (condition, $variable), got %v", a)
			}
			if len(vars[strings.Trim(a[1], "${}")]) == 0 {
				return "1=1", nil
			}
			return a[0], nil
		},
		"timeFilter": func(a []string) (string, error) {
			return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], dt(from), a[0], dt(to)), nil
		},
		"timeFilter_ms": func(a []string) (string, error) {
			return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], dt64(from), a[0], dt64(to)), nil
		},
		"dateFilter": func(a []string) (string, error) {
			return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], date(from), a[0], date(to)), nil
		},
		"timeInterval": func(a []string) (string, error) {
			return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", a[0], max(intervalS, 1)), nil
		},
		"timeInterval_ms": func(a []string) (string, error) {
			return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", a[0], max(intervalS, 1)*1000), nil
		},
	}
	// Function-like macros, innermost text first: conditionalAll runs in the frontend, before
	// variables; the others in the backend, after. Both see the same text here.
	for pos := 0; ; {
		i := strings.Index(sql[pos:], "$__")
		if i < 0 {
			break
		}
		i += pos
		j := i + 3
		for j < len(sql) && (sql[j] == '_' || sql[j] >= 'a' && sql[j] <= 'z' || sql[j] >= 'A' && sql[j] <= 'Z' || sql[j] >= '0' && sql[j] <= '9') {
			j++
		}
		if j >= len(sql) || sql[j] != '(' {
			pos = j // a macro without arguments, replaced below
			continue
		}
		name := sql[i+3 : j]
		fn, ok := macros[name]
		if !ok {
			return "", fmt.Errorf("unknown macro $__%s", name)
		}
		depth, end := 0, -1
		var args []string
		start := j + 1
		for k := j; k < len(sql) && end < 0; k++ {
			switch sql[k] {
			case '(':
				depth++
			case ')':
				if depth--; depth == 0 {
					end = k
					args = append(args, strings.TrimSpace(sql[start:k]))
				}
			case ',':
				if depth == 1 {
					args = append(args, strings.TrimSpace(sql[start:k]))
					start = k + 1
				}
			}
		}
		if end < 0 {
			return "", fmt.Errorf("unbalanced $__%s(", name)
		}
		out, err := fn(args)
		if err != nil {
			return "", err
		}
		sql = sql[:i] + out + sql[end+1:]
		pos = i
	}
	for _, r := range []struct{ from, to string }{
		{"$__fromTime_ms", dt64(from)}, {"$__toTime_ms", dt64(to)},
		{"$__fromTime", dt(from)}, {"$__toTime", dt(to)}, {"$__interval_s", strconv.Itoa(max(intervalS, 1))},
	} {
		sql = strings.ReplaceAll(sql, r.from, r.to)
	}
	var err error
	sql = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`).ReplaceAllStringFunc(sql, func(m string) string {
		sub := regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`).FindStringSubmatch(m)
		name, format := sub[1]+sub[3], sub[2]
		vals := vars[name]
		if len(vals) == 0 {
			err = fmt.Errorf("variable $%s set to All outside $__conditionalAll: Grafana would list every value", name)
			return m
		}
		switch format {
		case "singlequote":
			q := make([]string, len(vals))
			for i, v := range vals {
				q[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
			}
			return strings.Join(q, ",")
		case "":
			return strings.Join(vals, ",")
		}
		err = fmt.Errorf("variable format %s not handled", format)
		return m
	})
	if err != nil {
		return "", err
	}
	if strings.Contains(sql, "$") {
		return "", fmt.Errorf("unexpanded $ left in %q", sql)
	}
	return sql, nil
}
