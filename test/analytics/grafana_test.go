package analytics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const grafanaDir = "../../deployments/grafana"

// grafanaQuery is one SQL text of a dashboard: a panel target or a variable's query.
type grafanaQuery struct {
	dashboard, where, sql string
	table                 bool // format table (else time series)
}

type dashboard struct {
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

// loadDashboards reads every dashboard and checks what Grafana and the ClickHouse plugin need
// before any SQL runs: unique uids, every panel and target on the provisioned data source, SQL
// editor targets whose format matches their query type, variables defined before use.
func loadDashboards(t *testing.T, dsUID string) ([]dashboard, []grafanaQuery) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards under %s/dashboards: %v", grafanaDir, err)
	}
	var dashes []dashboard
	var queries []grafanaQuery
	uids := map[string]string{}
	varRef := regexp.MustCompile(`\$\{?(\w+)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
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
			if uid, _ := v.Datasource["uid"].(string); uid != dsUID {
				t.Errorf("%s variable %s: data source %v, want uid %s", d.file, v.Name, v.Datasource, dsUID)
			}
			checkVars("variable "+v.Name, v.Query.RawSQL)
			queries = append(queries, grafanaQuery{dashboard: d.file, where: "variable " + v.Name, sql: v.Query.RawSQL, table: true})
			defined[v.Name] = true
		}
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" || p.Type == "text" {
					continue
				}
				if uid, _ := p.Datasource["uid"].(string); uid != dsUID {
					t.Errorf("%s panel %q: data source %v, want uid %s", d.file, p.Title, p.Datasource, dsUID)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s panel %q has no query", d.file, p.Title)
				}
				for _, tg := range p.Targets {
					where := fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)
					if uid, _ := tg.Datasource["uid"].(string); uid != dsUID || tg.Datasource["type"] != "grafana-clickhouse-datasource" {
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
					queries = append(queries, grafanaQuery{dashboard: d.file, where: where, sql: tg.RawSQL, table: *tg.Format == 1})
				}
			}
		}
		walk(d.Panels)
		dashes = append(dashes, d)
	}
	return dashes, queries
}

// grafanaVars are the dashboard variables' values for one run: absent or empty means All.
type grafanaVars map[string][]string

// expandGrafana does what Grafana and the ClickHouse plugin do to a query before ClickHouse sees
// it, for a time range, an interval and variable values: the frontend's $__conditionalAll and
// variable interpolation, then the backend macros (pkg/macros of grafana/clickhouse-datasource:
// $__timeFilter, $__timeFilter_ms, $__dateFilter, $__timeInterval, $__timeInterval_ms,
// $__fromTime, $__toTime, $__fromTime_ms, $__toTime_ms, $__interval_s). Anything left starting
// with $ is an error: Grafana would send it as is.
func expandGrafana(sql string, from, to time.Time, intervalS int, vars grafanaVars) (string, error) {
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

// loadPipelineRows gives collector_stats, anomalies and dead_letters rows in the known range, so
// every panel has data: two collector runs reporting every 30 s with cumulative counters in which
// 13 of every 10,000 packets seen are lost (ring full 7, malformed 1, shed 3, failed 2).
func loadPipelineRows(t *testing.T, ch CH, ds *Dataset, runs [][3]string) (loss float64) {
	t.Helper()
	ctx := testCtx(t)
	var stats bytes.Buffer
	for r, run := range runs {
		for j := range 90 {
			n := uint64(j)
			seen, ring, sampled, malformed, shed, failed := 10000*n, 7*n, 100*n, n, 3*n, 2*n
			emitted := seen - ring - sampled
			read := emitted - malformed
			produced := read - shed
			raw, _ := json.Marshal(map[string]any{"version": 1, "kernel_seen": seen, "kernel_emitted": emitted, "kernel_ring_full": ring,
				"kernel_sampled_out": sampled, "samples_read": read, "samples_malformed": malformed, "records_produced": produced,
				"records_acked": produced - failed, "records_shed": shed, "records_failed": failed})
			row, _ := json.Marshal(map[string]any{"ts": ds.From.Add(40*time.Minute + time.Duration(j)*30*time.Second).Format(time.RFC3339Nano),
				"host": run[0], "iface": run[1], "collector_id": run[2], "partition": 0, "offset": r*1000 + j, "raw": string(raw)})
			stats.Write(append(row, '\n'))
		}
	}
	if err := ch.Insert(ctx, "INSERT INTO collector_stats (ts, host, iface, collector_id, `partition`, `offset`, raw) FORMAT JSONEachRow",
		&stats, map[string]string{"date_time_input_format": "best_effort"}); err != nil {
		t.Fatal(err)
	}
	at := func(m int) string { return ds.From.Add(time.Duration(m) * time.Minute).Format("2006-01-02 15:04:05") }
	for _, q := range []string{
		fmt.Sprintf("INSERT INTO anomalies (ts, kind, subject, window_start, window_end, score, evidence, detector_version, detector_host, id) VALUES "+
			"('%s', 'syn_flood', '198.51.100.10:443', '%s', '%s', 42.5, '{\"syns\":32000}', 'test', 'analytics', generateUUIDv4()), "+
			"('%s', 'port_scan', '203.0.113.7', '%s', '%s', 300, '{\"ports\":300}', 'test', 'analytics', generateUUIDv4()), "+
			"('%s', 'dns_nxdomain', '10.0.0.5', '%s', '%s', 0.4, '{\"share\":0.4}', 'test', 'analytics', generateUUIDv4())",
			at(47), at(44), at(46), at(46), at(40), at(45), at(60), at(41), at(59)),
		fmt.Sprintf("INSERT INTO dead_letters (ts, topic, `partition`, `offset`, error, raw) VALUES ('%s', 'packets', 0, 7, 'frame: bad magic', 'xx'), ('%s', 'packets', 1, 9, 'frame: truncated', 'yy')", at(50), at(70)),
	} {
		if err := ch.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return 13.0 / 10000
}

// TestGrafanaDashboards: the provisioning matches the compose deployment, and every panel's SQL
// and every variable's query, with Grafana's macros and variables expanded as the plugin does,
// runs on the real ClickHouse with the real schema over the known dataset: with every variable
// at All it must return rows (the dataset has something for every panel), with variables set to
// one value it must run. One value is checked: the pipeline's loss.
func TestGrafanaDashboards(t *testing.T) {
	dsUID := checkProvisioning(t)
	dashes, queries := loadDashboards(t, dsUID)
	for _, want := range []string{"overview", "talkers", "dns-tls-http", "anomalies", "pipeline"} {
		if !slices.ContainsFunc(dashes, func(d dashboard) bool { return d.file == want+".json" }) {
			t.Errorf("dashboard %s.json missing", want)
		}
	}
	ch, ds := known(t)
	loss := loadPipelineRows(t, ch, ds, [][3]string{{"edge-1", ds.Batches[0].Packets[0].Iface, "1"}, {"edge-3", "eth0", "9001"}})
	ctx := testCtx(t)
	runs := []struct {
		interval int
		vars     grafanaVars
	}{
		{120, grafanaVars{}},
		{30, grafanaVars{"host": {"edge-3"}, "iface": {"eth0", "eth1"}, "kind": {"syn_flood"}}},
	}
	checked := 0
	for _, run := range runs {
		for _, q := range queries {
			sql, err := expandGrafana(q.sql, ds.From, ds.Until, run.interval, run.vars)
			if err != nil {
				t.Errorf("%s %s: %v", q.dashboard, q.where, err)
				continue
			}
			rows, err := ch.Query(ctx, sql)
			if err != nil {
				t.Errorf("%s %s (interval %d s, variables %v): %v", q.dashboard, q.where, run.interval, run.vars, err)
				continue
			}
			if !q.table && len(run.vars) == 0 {
				// A time series needs its time first (the plugin turns long frames into wide ones).
				cols, err := ch.Query(ctx, "DESCRIBE ("+sql+")")
				if err != nil || len(cols) == 0 || !strings.HasPrefix(strings.Split(cols[0], "\t")[1], "DateTime") {
					t.Errorf("%s %s: a time series query whose first column is not a time: %v %v", q.dashboard, q.where, cols, err)
				}
			}
			if len(run.vars) == 0 && len(rows) == 0 {
				t.Errorf("%s %s: no rows over the known dataset\n%s", q.dashboard, q.where, sql)
			}
			if q.where == `panel "Loss in the range" target A` && len(run.vars) == 0 {
				if got, err := strconv.ParseFloat(rows[0], 64); err != nil || math.Abs(got-loss) > 1e-12 {
					t.Errorf("pipeline loss = %q, want %v", rows[0], loss)
				}
			}
			checked++
		}
	}
	t.Logf("%d dashboards, %d queries, %d runs succeeded", len(dashes), len(queries), checked)
}

// checkProvisioning: the data source and dashboard provider match deployments/compose: the
// mounts, the ClickHouse service, its user and password, the ingester's database. It returns the
// data source's uid.
func checkProvisioning(t *testing.T) string {
	t.Helper()
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	readYAML(t, "../../deployments/compose/compose.yaml", &compose)
	var cfg struct {
		Ingest map[string]string `yaml:"ingest"`
	}
	readYAML(t, "../../deployments/compose/packetlake.yaml", &cfg)
	var sources struct {
		Datasources []struct {
			UID            string            `yaml:"uid"`
			Type           string            `yaml:"type"`
			JSONData       map[string]any    `yaml:"jsonData"`
			SecureJSONData map[string]string `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(grafanaDir, "provisioning/datasources/clickhouse.yaml"), &sources)
	var providers struct {
		Providers []struct {
			Type    string            `yaml:"type"`
			Options map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(grafanaDir, "provisioning/dashboards/packetlake.yaml"), &providers)

	mounts := map[string]string{}
	for _, v := range compose.Services["grafana"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[filepath.Clean(filepath.Join("../../deployments/compose", parts[0]))] = parts[1]
		}
	}
	if mounts[filepath.Clean(filepath.Join(grafanaDir, "provisioning"))] != "/etc/grafana/provisioning" {
		t.Errorf("compose does not mount %s/provisioning at /etc/grafana/provisioning: %v", grafanaDir, mounts)
	}
	dashMount := mounts[filepath.Clean(filepath.Join(grafanaDir, "dashboards"))]
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" || providers.Providers[0].Options["path"] != dashMount || dashMount == "" {
		t.Errorf("dashboard provider %+v does not read where compose mounts the dashboards (%q)", providers.Providers, dashMount)
	}
	if len(sources.Datasources) != 1 {
		t.Fatalf("want one data source, got %+v", sources.Datasources)
	}
	src := sources.Datasources[0]
	chEnv := compose.Services["clickhouse"].Environment
	addr := cfg.Ingest["clickhouse"]
	if src.Type != "grafana-clickhouse-datasource" || src.UID == "" ||
		fmt.Sprintf("%v:%v", src.JSONData["host"], src.JSONData["port"]) != addr || src.JSONData["protocol"] != "native" ||
		src.JSONData["username"] != chEnv["CLICKHOUSE_USER"] || src.SecureJSONData["password"] != chEnv["CLICKHOUSE_PASSWORD"] ||
		src.JSONData["defaultDatabase"] != cfg.Ingest["database"] {
		t.Errorf("data source %+v does not match compose (ClickHouse %s, user %s, database %s)", src, addr, chEnv["CLICKHOUSE_USER"], cfg.Ingest["database"])
	}
	return src.UID
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
