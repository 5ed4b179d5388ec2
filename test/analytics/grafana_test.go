package analytics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

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
	dashes, queries := LoadDashboards(t, dsUID)
	for _, want := range []string{"overview", "talkers", "dns-tls-http", "anomalies", "pipeline"} {
		if !slices.ContainsFunc(dashes, func(d Dashboard) bool { return d.file == want+".json" }) {
			t.Errorf("dashboard %s.json missing", want)
		}
	}
	ch, ds := known(t)
	loss := loadPipelineRows(t, ch, ds, [][3]string{{"edge-1", ds.Batches[0].Packets[0].Iface, "1"}, {"edge-3", "eth0", "9001"}})
	ctx := testCtx(t)
	runs := []struct {
		interval int
		vars     GrafanaVars
	}{
		{120, GrafanaVars{}},
		{30, GrafanaVars{"host": {"edge-3"}, "iface": {"eth0", "eth1"}, "kind": {"syn_flood"}}},
	}
	checked := 0
	for _, run := range runs {
		for _, q := range queries {
			sql, err := ExpandGrafana(q.SQL, ds.From, ds.Until, run.interval, run.vars)
			if err != nil {
				t.Errorf("%s %s: %v", q.Dashboard, q.Where, err)
				continue
			}
			rows, err := ch.Query(ctx, sql)
			if err != nil {
				t.Errorf("%s %s (interval %d s, variables %v): %v", q.Dashboard, q.Where, run.interval, run.vars, err)
				continue
			}
			if !q.Table && len(run.vars) == 0 {
				// A time series needs its time first (the plugin turns long frames into wide ones).
				cols, err := ch.Query(ctx, "DESCRIBE ("+sql+")")
				if err != nil || len(cols) == 0 || !strings.HasPrefix(strings.Split(cols[0], "\t")[1], "DateTime") {
					t.Errorf("%s %s: a time series query whose first column is not a time: %v %v", q.Dashboard, q.Where, cols, err)
				}
			}
			if len(run.vars) == 0 && len(rows) == 0 {
				t.Errorf("%s %s: no rows over the known dataset\n%s", q.Dashboard, q.Where, sql)
			}
			if q.Where == `panel "Loss in the range" target A` && len(run.vars) == 0 {
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
