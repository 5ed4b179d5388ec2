package bench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/schema"
)

// BenchmarkViewDedup finds out what the deduplication of the views' blocks costs (issue #18,
// vdedup branch) before anything is changed: the same batches, inserted over HTTP as separate
// 100k-row INSERTs (the ingester's batch size, one block each), into a fresh database with every
// view, merges stopped, under each way of deduplicating. Per mode it logs ClickHouse's user and
// system CPU, the active parts each table got, the files of the tables' deduplication logs and
// every file in the database's directories. Rows BENCH_VDEDUP_ROWS (default 1M), rounds
// BENCH_PRICE_ROUNDS (default 3, modes interleaved), BENCH_VDEDUP_PERF=<mode> records the
// server with perf (cpu-clock, call graphs) during that mode's inserts of the first round into
// perf-<mode>.data in the test's directory.
func BenchmarkViewDedup(b *testing.B) {
	n, rounds := envInt("BENCH_VDEDUP_ROWS", 1_000_000), envInt("BENCH_PRICE_ROUNDS", 3)
	_, _, pkts := frames(n, 1000, 4, time.Now().Add(-time.Hour).UnixNano())
	const block = 100_000
	var bodies [][]byte
	for i := 0; i < len(pkts); i += block {
		var body []byte
		for j := i; j < min(i+block, len(pkts)); j++ {
			body = appendRowBinary(body, &pkts[j])
		}
		bodies = append(bodies, body)
	}
	cols := make([]string, len(schema.Columns))
	for i, c := range schema.Columns {
		cols[i] = c.Name
	}
	client, err := env.CHConfig("").Client(chconn.Timeout(5 * time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	conn, chPid := env.CH(b), strconv.Itoa(env.ClickHouse.Pid())
	modes := []dedupMode{
		{"token", map[string]string{"insert_deduplicate": "1"}, true},
		{"token-not-in-views", map[string]string{"insert_deduplicate": "1", "deduplicate_blocks_in_dependent_materialized_views": "0"}, true},
		{"no-dedup", map[string]string{"insert_deduplicate": "0"}, false},
		// The floor's INSERT ... SELECT of BenchmarkRollupPrices, all rows in one statement.
		{"select", map[string]string{}, false},
		{"select-token", map[string]string{"insert_deduplicate": "1"}, true},
		{"select-token-not-in-views", map[string]string{"insert_deduplicate": "1", "deduplicate_blocks_in_dependent_materialized_views": "0"}, true},
		// The same, one statement per 100k-row block: the ingester's pattern (one INSERT per
		// batch) without the HTTP body's parsing.
		{"per-block-select", map[string]string{}, false},
		{"per-block-select-token", map[string]string{"insert_deduplicate": "1"}, true},
		{"per-block-select-token-not-in-views", map[string]string{"insert_deduplicate": "1", "deduplicate_blocks_in_dependent_materialized_views": "0"}, true},
	}
	src := memorySource(b, "vdedup", n)
	if re := os.Getenv("BENCH_VDEDUP_MODES"); re != "" {
		modes = slices.DeleteFunc(modes, func(m dedupMode) bool { return !regexp.MustCompile(re).MatchString(m.name) })
	}
	user, sys := map[string][]float64{}, map[string][]float64{}
	for range b.N {
		for r := range rounds {
			for k := range modes {
				m := modes[(k+r)%len(modes)]
				db := migrated(b, conn, true)
				for _, t := range mergeTreeTables(b, db) {
					chExec(b, conn, "SYSTEM STOP MERGES "+db+"."+t)
				}
				before := dbFiles(b, db)
				var stopPerf func()
				if r == 0 && os.Getenv("BENCH_VDEDUP_PERF") == m.name {
					stopPerf = perfRecord(b, chPid, filepath.Join(os.TempDir(), "vdedup-perf-"+m.name+".data"))
				}
				u0, s0 := userSys(b, chPid)
				if strings.HasPrefix(m.name, "select") {
					chExec(b, conn, fmt.Sprintf("INSERT INTO %s.packets SELECT * FROM %s SETTINGS %s", db, src, m.selectSettings(db, 0)))
				}
				if strings.HasPrefix(m.name, "per-block-select") {
					for i := range len(bodies) {
						chExec(b, conn, fmt.Sprintf("INSERT INTO %s.packets SELECT * FROM %s LIMIT %d OFFSET %d SETTINGS %s", db, src, block, i*block, m.selectSettings(db, i)))
					}
				}
				for i, body := range bodies {
					if strings.Contains(m.name, "select") {
						break
					}
					set := map[string]string{}
					for k, v := range m.settings {
						set[k] = v
					}
					if m.token {
						set["insert_deduplication_token"] = fmt.Sprintf("vdedup/%s/%d", db, i)
					}
					if err := client.Insert(context.Background(), "INSERT INTO "+db+".packets ("+strings.Join(cols, ", ")+") FORMAT RowBinary", bytes.NewReader(body), set); err != nil {
						b.Fatal(err)
					}
				}
				u1, s1 := userSys(b, chPid)
				if stopPerf != nil {
					stopPerf()
				}
				user[m.name], sys[m.name] = append(user[m.name], u1-u0), append(sys[m.name], s1-s0)
				b.Logf("round %d %-20s clickhouse user %5.2f sys %5.2f cpu-s", r, m.name, u1-u0, s1-s0)
				if r == 0 {
					logParts(b, db, len(bodies))
					after := dbFiles(b, db)
					b.Logf("%s: files in the database's directories %d -> %d (%d bytes), of them deduplication logs: %d files, %d bytes",
						m.name, before.files, after.files, after.bytes, after.dedupFiles, after.dedupBytes)
					logPartFiles(b, db, "flows_1m")
					logPartFiles(b, db, "packets")
					logDedupLog(b, db, "flows_1m")
					logDedupLog(b, db, "packets")
				}
				chExec(b, conn, "DROP DATABASE "+db+" SYNC")
			}
		}
	}
	for _, m := range modes {
		u, s := median(user[m.name]), median(sys[m.name])
		b.ReportMetric(u, m.name+"-ch-user-s")
		b.ReportMetric(s, m.name+"-ch-sys-s")
		b.Logf("%-20s median clickhouse user %5.2f sys %5.2f cpu-s per %d rows", m.name, u, s, n)
	}
}

type dedupMode struct {
	name     string
	settings map[string]string
	token    bool
}

// selectSettings are ch-floor's settings for an INSERT ... SELECT with m's, and the token of
// statement i.
func (m dedupMode) selectSettings(db string, i int) string {
	set := "max_threads = 1, max_insert_threads = 1, max_block_size = 100000, min_insert_block_size_rows = 100000"
	for k, v := range m.settings {
		set += ", " + k + " = " + v
	}
	if m.token {
		set += fmt.Sprintf(", insert_deduplication_token = 'vdedup/%s/%d'", db, i)
	}
	return set
}

// logParts logs the active parts of every table of db after inserts INSERTs.
func logParts(b *testing.B, db string, inserts int) {
	rows := queryStrings(b, "SELECT table || ' ' || toString(count()) || ' parts, ' || toString(sum(rows)) || ' rows, ' || arrayStringConcat(groupUniqArray(part_type), '/') FROM system.parts WHERE database = ? AND active GROUP BY table ORDER BY table", db)
	b.Logf("after %d inserts: %s", inserts, strings.Join(rows, "; "))
}

type fileCount struct{ files, bytes, dedupFiles, dedupBytes int64 }

// dbFiles counts the files under the data directories of db's tables.
func dbFiles(b *testing.B, db string) (c fileCount) {
	for _, p := range queryStrings(b, "SELECT arrayJoin(data_paths) FROM system.tables WHERE database = ?", db) {
		filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			c.files++
			c.bytes += info.Size()
			if strings.Contains(path, "deduplication_logs") {
				c.dedupFiles++
				c.dedupBytes += info.Size()
			}
			return nil
		})
	}
	return c
}

// perfRecord runs perf record on pid until the returned func is called.
func perfRecord(b *testing.B, pid, out string) func() {
	cmd := exec.Command("perf", "record", "-e", "cpu-clock", "-g", "-p", pid, "-o", out)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // perf attaches to every thread before it samples
	return func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		b.Logf("perf data in %s", out)
	}
}

// logDedupLog logs the deduplication log of db.table: what one insert writes there.
func logDedupLog(b *testing.B, db, table string) {
	for _, p := range queryStrings(b, "SELECT arrayJoin(data_paths) FROM system.tables WHERE database = ? AND name = ?", db, table) {
		logs, _ := filepath.Glob(filepath.Join(p, "deduplication_logs", "*"))
		for _, f := range logs {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s.%s %s (%d bytes):\n%s", db, table, filepath.Base(f), len(data), data)
		}
	}
}

// logPartFiles logs the files of one active part of db.table: what each insert creates there.
func logPartFiles(b *testing.B, db, table string) {
	for _, p := range queryStrings(b, "SELECT path FROM system.parts WHERE database = ? AND table = ? AND active LIMIT 1", db, table) {
		entries, err := os.ReadDir(p)
		if err != nil {
			b.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		b.Logf("%s.%s part %s: %d files: %s", db, table, filepath.Base(p), len(names), strings.Join(names, " "))
	}
}
