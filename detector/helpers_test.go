package detector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/packetlake/packetlake/schema"
)

// migratedDB makes a database for one test and applies every migration to it, 0200 and 0201 included.
func migratedDB(t *testing.T) string {
	t.Helper()
	db := env.Database(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := schema.Migrate(ctx, env.CH(t), db); err != nil {
		t.Fatalf("migrate %s: %v", db, err)
	}
	return db
}

// testConfig is DefaultConfig against the test ClickHouse and database db.
func testConfig(db string) Config {
	cfg := DefaultConfig()
	cfg.ClickHouse, cfg.Host = env.CHConfig(db), "test"
	return cfg
}

func newDetector(t *testing.T, cfg Config, reg prometheus.Registerer) *Detector {
	t.Helper()
	d, err := New(cfg, Dependencies{Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

// execSQL runs a statement on the test ClickHouse; {db} is replaced with the database.
func execSQL(t *testing.T, db, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := env.CH(t).Exec(ctx, strings.ReplaceAll(sql, "{db}", db)); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
}

// row is an anomalies row as a test reads it.
type row struct {
	TS          time.Time `ch:"ts"`
	Kind        string    `ch:"kind"`
	Subject     string    `ch:"subject"`
	WindowStart time.Time `ch:"window_start"`
	WindowEnd   time.Time `ch:"window_end"`
	Score       float64   `ch:"score"`
	Evidence    string    `ch:"evidence"`
	Version     string    `ch:"detector_version"`
	ID          string    `ch:"id_text"`
}

func (r row) String() string { return r.Kind + " " + r.Subject }

// addresses is the evidence's list of the addresses the anomaly involves.
func (r row) addresses() []string {
	var ev struct {
		Addresses []string `json:"addresses"`
	}
	json.Unmarshal([]byte(r.Evidence), &ev)
	return ev.Addresses
}

func anomalies(t *testing.T, db string) []row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rows []row
	if err := env.CH(t).Select(ctx, &rows, fmt.Sprintf(
		"SELECT ts, kind, subject, window_start, window_end, score, evidence, detector_version, toString(id) AS id_text FROM %s.anomalies ORDER BY ts, kind, subject", db)); err != nil {
		t.Fatal(err)
	}
	return rows
}

func kindsAndSubjects(rows []row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.String()
	}
	return out
}

func counterValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	total := 0.0
	for m := range ch {
		var d dto.Metric
		m.Write(&d)
		if d.Counter != nil {
			total += d.Counter.GetValue()
		}
		if d.Gauge != nil {
			total += d.Gauge.GetValue()
		}
		if d.Histogram != nil {
			total += float64(d.Histogram.GetSampleCount())
		}
	}
	return total
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

var _ io.Writer = testWriter{}
