package schema_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/local/chlocal"
	"github.com/packetlake/packetlake/schema"
)

// The migrations run against a real ClickHouse (a `packetlake clickhouse-local` child): what
// matters is what ClickHouse makes of the DDL, not the DDL text.

var (
	plBinary string
	chAddr   string // native address of the shared server; each test uses its own database
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "schema-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	plBinary = filepath.Join(dir, "packetlake")
	if out, err := exec.Command("go", "build", "-o", plBinary, "github.com/packetlake/packetlake/cmd/packetlake").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build packetlake: %v\n%s", err, out)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Missing prerequisites (npm, the engine download) fail here, loudly: never a skip.
	p, err := chlocal.Spawn(ctx, chlocal.SpawnConfig{Binary: plBinary, DataDir: filepath.Join(dir, "ch"), LogPath: filepath.Join(dir, "ch.log")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start ClickHouse:", err)
		return 1
	}
	defer p.Kill()
	chAddr = p.TCPAddr()
	return m.Run()
}

func connect(t *testing.T) driver.Conn {
	t.Helper()
	conn, err := chconn.Config{Addr: chAddr}.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// TestPacketsColumnsEqualSchema: the packets table ClickHouse built from 0001 has exactly
// schema.Columns, names and types, in order.
func TestPacketsColumnsEqualSchema(t *testing.T) {
	conn := connect(t)
	if err := schema.Migrate(ctx(t), conn, "cols"); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Name string `ch:"name"`
		Type string `ch:"type"`
	}
	if err := conn.Select(ctx(t), &got, "SELECT name, type FROM system.columns WHERE database = 'cols' AND table = 'packets' ORDER BY position"); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(schema.Columns) {
		t.Errorf("packets has %d columns, schema.Columns %d", len(got), len(schema.Columns))
	}
	for i := range min(len(got), len(schema.Columns)) {
		if want := schema.Columns[i]; got[i].Name != want.Name || got[i].Type != want.CHType {
			t.Errorf("column %d: table has %s %s, schema.Columns %s %s", i, got[i].Name, got[i].Type, want.Name, want.CHType)
		}
	}
	for _, table := range []string{"packets", "dead_letters", "collector_stats", "ingest_batches", "ingest_gaps", "schema_migrations"} {
		var n uint64
		if err := conn.QueryRow(ctx(t), "SELECT count() FROM system.tables WHERE database = 'cols' AND name = ?", table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: %d found, err %v", table, n, err)
		}
	}
	// Dedup by token needs the window on every table the ingester inserts into with a token.
	var window []struct {
		Name string `ch:"name"`
	}
	if err := conn.Select(ctx(t), &window, "SELECT name FROM system.tables WHERE database = 'cols' AND engine LIKE '%MergeTree' AND create_table_query NOT LIKE '%non_replicated_deduplication_window%' AND name != 'schema_migrations'"); err != nil {
		t.Fatal(err)
	}
	if len(window) > 0 {
		t.Errorf("tables without non_replicated_deduplication_window: %v", window)
	}
}

func versions(t *testing.T, conn driver.Conn, db string) []uint32 {
	t.Helper()
	var rows []struct {
		V uint32 `ch:"version"`
	}
	if err := conn.Select(ctx(t), &rows, "SELECT version FROM "+db+".schema_migrations FINAL ORDER BY version"); err != nil {
		t.Fatal(err)
	}
	vs := make([]uint32, len(rows))
	for i, r := range rows {
		vs[i] = r.V
	}
	return vs
}

func allVersions(t *testing.T) []uint32 {
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var vs []uint32
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

// TestMigrateIdempotent: a second run changes nothing, and so does a run after a crash that
// applied the DDL but lost the bookkeeping (schema_migrations emptied).
func TestMigrateIdempotent(t *testing.T) {
	conn := connect(t)
	for i := range 2 {
		if err := schema.Migrate(ctx(t), conn, "idem"); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	if vs, want := versions(t, conn, "idem"), allVersions(t); fmt.Sprint(vs) != fmt.Sprint(want) {
		t.Fatalf("versions recorded %v, want %v once each", vs, want)
	}
	if err := conn.Exec(ctx(t), "INSERT INTO idem.packets (seq) VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx(t), "TRUNCATE TABLE idem.schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(ctx(t), conn, "idem"); err != nil {
		t.Fatalf("re-applying every file over existing tables: %v", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx(t), "SELECT count() FROM idem.packets").Scan(&n); err != nil || n != 1 {
		t.Fatalf("packets rows after re-apply: %d (%v), want the 1 row kept", n, err)
	}
}

// TestMigrateRefusesNewer: a database migrated by a newer packetlake is left alone.
func TestMigrateRefusesNewer(t *testing.T) {
	conn := connect(t)
	if err := schema.Migrate(ctx(t), conn, "newer"); err != nil {
		t.Fatal(err)
	}
	next := schema.LatestVersion() + 1
	if err := conn.Exec(ctx(t), "INSERT INTO newer.schema_migrations VALUES (?, 'from_the_future', now())", next); err != nil {
		t.Fatal(err)
	}
	err := schema.Migrate(ctx(t), conn, "newer")
	if err == nil || !strings.Contains(err.Error(), "newer than") || !strings.Contains(err.Error(), fmt.Sprint(next)) {
		t.Fatalf("Migrate on a newer database: %v, want a refusal naming version %d", err, next)
	}
	t.Logf("refusal: %v", err)
}

// TestMigrateRefusesRenamed: a recorded migration this binary has under another name means
// the files differ; applying on top would be guesswork.
func TestMigrateRefusesRenamed(t *testing.T) {
	conn := connect(t)
	if err := schema.Migrate(ctx(t), conn, "renamed"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx(t), "INSERT INTO renamed.schema_migrations VALUES (1, 'something_else', now() + 1)"); err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(ctx(t), conn, "renamed"); err == nil || !strings.Contains(err.Error(), "something_else") {
		t.Fatalf("Migrate with a renamed migration: %v, want a refusal", err)
	}
}

func TestMigrateRejectsBadDatabaseName(t *testing.T) {
	if err := schema.Migrate(ctx(t), connect(t), "x; DROP TABLE y"); err == nil {
		t.Fatal("accepted a database name that is not an identifier")
	}
}

// TestSchemaApplyCommand runs `packetlake schema apply` as an operator would.
func TestSchemaApplyCommand(t *testing.T) {
	out, err := exec.Command(plBinary, "schema", "apply", "--clickhouse", chAddr, "--database", "cli").CombinedOutput()
	if err != nil {
		t.Fatalf("schema apply: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("version %d", schema.LatestVersion()); !strings.Contains(string(out), want) {
		t.Fatalf("schema apply said %q, want %q", out, want)
	}
	if vs, want := versions(t, connect(t), "cli"), allVersions(t); fmt.Sprint(vs) != fmt.Sprint(want) {
		t.Fatalf("versions after schema apply: %v, want %v", vs, want)
	}
}

// settingsOnly is an ALTER that only sets table settings: running it twice sets the same values.
var settingsOnly = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+\S+\s+MODIFY\s+SETTING\s+\w+\s*=\s*[\w.']+(\s*,\s*\w+\s*=\s*[\w.']+)*\s*;?$`)

func TestMigrationFilesWellFormed(t *testing.T) {
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for _, s := range m.Statements {
			// Every statement must be safe to run twice (see migrate.go).
			u := strings.ToUpper(s)
			if !strings.Contains(u, "IF NOT EXISTS") && !strings.Contains(u, "IF EXISTS") && !settingsOnly.MatchString(s) {
				t.Errorf("%04d_%s: statement is not idempotent: %.80s", m.Version, m.Name, s)
			}
			if !strings.Contains(s, "{database}.") {
				t.Errorf("%04d_%s: statement does not name {database}: %.80s", m.Version, m.Name, s)
			}
		}
	}
}

// TestMigrateRefusesOverlayDefault: chdb's default database is an Overlay, which cannot hold the
// tables; Migrate says so instead of failing on the first CREATE TABLE.
func TestMigrateRefusesOverlayDefault(t *testing.T) {
	err := schema.Migrate(ctx(t), connect(t), "default")
	if err == nil || !strings.Contains(err.Error(), "Atomic") {
		t.Fatalf("Migrate into chdb's default database: %v, want a refusal naming Atomic", err)
	}
	t.Logf("refusal: %v", err)
}

// TestMigrateSkipsWhatAnotherApplied: two ingesters start on a new database together; the first
// applies every file, records it and begins inserting while the second, which read the record
// before, is still going through the files. The second must not run the files the first has
// recorded by then: 0600, 0902 and 0903 drop and re-create rollup views, and INSERTs made
// meanwhile would miss those rollups. staleConn plays the second ingester's first read of
// schema_migrations, taken before the first recorded 0600 and later; every later read is
// ClickHouse's. The views must be the same objects afterwards (their UUIDs) and no DROP VIEW
// must have been sent.
func TestMigrateSkipsWhatAnotherApplied(t *testing.T) {
	conn := connect(t)
	if err := schema.Migrate(ctx(t), conn, "racing"); err != nil {
		t.Fatal(err)
	}
	uuids := func() map[string]string {
		var rows []struct {
			Name string `ch:"name"`
			UUID string `ch:"uuid"`
		}
		if err := conn.Select(ctx(t), &rows, "SELECT name, toString(uuid) AS uuid FROM system.tables WHERE database = 'racing' AND engine = 'MaterializedView'"); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range rows {
			out[r.Name] = r.UUID
		}
		return out
	}
	before := uuids()
	if len(before) < 14 {
		t.Fatalf("%d views after Migrate (%v), want the 14 rollup views", len(before), before)
	}
	second := &staleConn{Conn: conn, hideFrom: 600}
	if err := schema.Migrate(ctx(t), second, "racing"); err != nil {
		t.Fatal(err)
	}
	if second.stale == 0 {
		t.Fatal("the stale first read never happened: the test proves nothing")
	}
	for _, stmt := range second.execs {
		if strings.Contains(strings.ToUpper(stmt), "DROP VIEW") {
			t.Errorf("the second Migrate ran %.80q… of a file the first had recorded", stmt)
		}
	}
	if after := uuids(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("views re-created under the first ingester's INSERTs:\n before %v\n after  %v", before, after)
	}
	if vs, want := versions(t, conn, "racing"), allVersions(t); fmt.Sprint(vs) != fmt.Sprint(want) {
		t.Errorf("versions recorded %v, want %v", vs, want)
	}
}

// staleConn answers the first read of schema_migrations without the versions from hideFrom on,
// as it read before another Migrate recorded them, and passes everything else to Conn.
type staleConn struct {
	schema.Conn
	hideFrom uint32
	stale    int      // versions hidden from the first read
	reads    int      // reads of schema_migrations
	execs    []string // statements sent
}

func (c *staleConn) Exec(ctx context.Context, query string, args ...any) error {
	c.execs = append(c.execs, query)
	return c.Conn.Exec(ctx, query, args...)
}

func (c *staleConn) Select(ctx context.Context, dest any, query string, args ...any) error {
	if err := c.Conn.Select(ctx, dest, query, args...); err != nil {
		return err
	}
	if !strings.Contains(query, "schema_migrations") {
		return nil
	}
	if c.reads++; c.reads > 1 {
		return nil
	}
	rows := reflect.ValueOf(dest).Elem() // []struct{Version uint32; Name string}
	kept := reflect.MakeSlice(rows.Type(), 0, rows.Len())
	for i := range rows.Len() {
		if uint32(rows.Index(i).FieldByName("Version").Uint()) >= c.hideFrom {
			c.stale++
			continue
		}
		kept = reflect.Append(kept, rows.Index(i))
	}
	rows.Set(kept)
	return nil
}
