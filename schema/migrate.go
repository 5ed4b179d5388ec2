package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The tables are created by versioned SQL files, applied in order and recorded in
// schema_migrations. Each file must be idempotent on its own (CREATE ... IF NOT EXISTS, ALTER
// ... IF [NOT] EXISTS, ALTER ... MODIFY SETTING): ClickHouse has no transactional DDL, so a crash between a file's
// statements and its bookkeeping row re-runs the file, and two ingesters starting together may
// run it twice. {database} in a file is replaced with the quoted database name.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Conn is the part of a ClickHouse connection Migrate needs. clickhouse-go's driver.Conn has
// it; taking an interface keeps this package (imported by the collector and the BPF generator)
// free of the ClickHouse client.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Select(ctx context.Context, dest any, query string, args ...any) error
}

// Migration is one versioned SQL file.
type Migration struct {
	Version    uint32
	Name       string   // file name without the version and .sql: "packets"
	Statements []string // with {database} still in place
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations returns the embedded migrations in version order. It fails on a misnamed file or a
// version used twice, so a bad file is caught by every test rather than in production. Gaps are
// allowed: ranges of numbers can be set aside for areas of the schema (0100s: rollups).
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		v, _ := strconv.ParseUint(m[1], 10, 32)
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: uint32(v), Name: m[2], Statements: splitStatements(string(b))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version == 0 || i > 0 && m.Version == out[i-1].Version {
			return nil, fmt.Errorf("migration version %04d is 0 or used twice", m.Version)
		}
		if len(m.Statements) == 0 {
			return nil, fmt.Errorf("migration %04d_%s has no statement", m.Version, m.Name)
		}
	}
	return out, nil
}

// LatestVersion is the newest schema version this binary knows.
func LatestVersion() uint32 {
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// splitStatements cuts a file at semicolons that end a line, after dropping `--` comment lines.
// Statements in migrations never contain such a semicolon inside a string literal.
func splitStatements(sql string) []string {
	var lines []string
	for _, l := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	var out []string
	for _, s := range strings.Split(strings.Join(lines, "\n"), ";\n") {
		s = strings.TrimSuffix(strings.TrimSpace(s), ";")
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Migrate brings database up to LatestVersion: it creates the database (Atomic) and the
// schema_migrations table if needed and applies the migrations not recorded there, in order.
// It refuses a database whose recorded version is newer than this binary knows, or whose
// recorded names differ from this binary's: running older or different code against it could
// write rows the schema no longer means.
func Migrate(ctx context.Context, conn Conn, database string) error {
	if !identifier.MatchString(database) {
		return fmt.Errorf("migrate: database name %q is not a plain identifier", database)
	}
	ms, err := Migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := "`" + database + "`"
	// chdb's default database is an Overlay that cannot hold MergeTree tables; a named
	// Atomic database works on every ClickHouse.
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db+" ENGINE = Atomic"); err != nil {
		return fmt.Errorf("migrate: create database %s: %w", database, err)
	}
	var engines []struct {
		Engine string `ch:"engine"`
	}
	if err := conn.Select(ctx, &engines, "SELECT engine FROM system.databases WHERE name = ?", database); err != nil {
		return fmt.Errorf("migrate: read engine of database %s: %w", database, err)
	}
	if len(engines) != 1 || (engines[0].Engine != "Atomic" && engines[0].Engine != "Replicated") {
		return fmt.Errorf("migrate: database %s exists with engine %q; packetlake needs an Atomic database (the default database of chdb is an Overlay): choose another --database", database, engineName(engines))
	}
	if err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+db+".schema_migrations "+
		"(version UInt32, name String, applied_at DateTime) "+
		"ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn, db)
	if err != nil {
		return err
	}
	if err := checkApplied(database, applied); err != nil {
		return err
	}
	pending := false
	for _, m := range ms {
		_, done := applied[m.Version]
		pending = pending || !done
	}
	if pending {
		// Single-server DDL on one node of a cluster would leave that node with tables its
		// Distributed tables and the other nodes do not have.
		if cluster, err := distributedOver(ctx, conn, database); err != nil {
			return fmt.Errorf("migrate: %w", err)
		} else if cluster != "" {
			return fmt.Errorf("migrate: database %s is laid out over cluster %s (packets is a Distributed table) and lacks migrations of this packetlake: apply them with `packetlake schema apply --cluster %s`, not to one node", database, cluster, cluster)
		}
	}
	for _, m := range ms {
		if _, done := applied[m.Version]; done {
			continue
		}
		// Read the record again right before each file: another Migrate (a second ingester
		// started at the same time) may have applied it since, finished, and begun inserting.
		// Running the file again then would drop and re-create rollup views (0600, 0902,
		// 0903) under that ingester's INSERTs, which would miss those rollups, or put back an
		// older view for a while (0600's after 0903's).
		if applied, err = appliedMigrations(ctx, conn, db); err != nil {
			return err
		}
		if _, done := applied[m.Version]; done {
			continue
		}
		for _, stmt := range m.Statements {
			if err := execMigration(ctx, conn, strings.ReplaceAll(stmt, "{database}", db)); err != nil {
				return fmt.Errorf("migrate: %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		if err := conn.Exec(ctx, "INSERT INTO "+db+".schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now().UTC().Truncate(time.Second)); err != nil {
			return fmt.Errorf("migrate: record %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// execMigration runs one statement of a migration, without a MODIFY ORDER BY the table's key
// already satisfies (sortkey.go: a migration never shrinks a key).
func execMigration(ctx context.Context, conn Conn, stmt string) error {
	stmt, err := withoutSatisfiedKey(ctx, conn, stmt)
	if err != nil || stmt == "" {
		return err
	}
	return conn.Exec(ctx, stmt)
}

// checkApplied refuses recorded migrations this binary does not have: a newer schema, or
// different files.
func checkApplied(database string, applied map[uint32]string) error {
	ms, err := Migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	known := make(map[uint32]string, len(ms))
	for _, m := range ms {
		known[m.Version] = m.Name
	}
	latest := ms[len(ms)-1].Version
	newest := uint32(0)
	for v := range applied {
		newest = max(newest, v)
	}
	if newest > latest {
		return fmt.Errorf("migrate: database %s has schema version %d (%s), newer than the %d this packetlake knows: upgrade packetlake, do not run an older one against it", database, newest, applied[newest], latest)
	}
	for v, name := range applied {
		if known[v] != name {
			return fmt.Errorf("migrate: database %s recorded migration %04d as %q, which this packetlake does not have: the migration files differ", database, v, name)
		}
	}
	return nil
}

// appliedMigrations reads version -> name. FINAL folds the duplicate rows two concurrent
// Migrate calls may both have written.
func appliedMigrations(ctx context.Context, conn Conn, db string) (map[uint32]string, error) {
	var rows []struct {
		Version uint32 `ch:"version"`
		Name    string `ch:"name"`
	}
	if err := conn.Select(ctx, &rows, "SELECT version, name FROM "+db+".schema_migrations FINAL ORDER BY version"); err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	out := make(map[uint32]string, len(rows))
	for _, r := range rows {
		out[r.Version] = r.Name
	}
	return out, nil
}

func engineName(rows []struct {
	Engine string `ch:"engine"`
}) string {
	if len(rows) == 0 {
		return "none"
	}
	return rows[0].Engine
}
