package analytics

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// BenchmarkStorageInsertCPU prices migration 0900 at insert on the shared capture mix (TLS
// names, JA4s and DNS names in the proportions of the captures, which the bench mix of
// test/bench lacks): the same ~1M rows, already in a Memory table with String columns (what the
// ingester's Arrow utf8 brings), inserted into packets as migrated and into packets with 0900
// undone, in 100k-row blocks, one thread, merges stopped, no views; the tables alternate first
// and second round after round. The price is ClickHouse's CPU (user and system, /proc) over the
// INSERT; medians are reported. Run it under the shared lock: flock /work/bench.lock go test
// ./test/analytics -run '^$' -bench StorageInsertCPU -benchtime 1x (root; BENCH_STORAGE_ROUNDS,
// default 5).
func BenchmarkStorageInsertCPU(b *testing.B) {
	ch := migrated(b)
	ctx := testCtx(b)
	_, _, copies := loadMixBase(b, ch)
	copies *= 5
	if err := ch.Exec(ctx, "CREATE TABLE mix_mt AS packets"); err != nil {
		b.Fatal(err)
	}
	for _, a := range before0900 {
		if err := ch.Exec(ctx, "ALTER TABLE mix_mt "+a); err != nil {
			b.Fatal(err)
		}
	}
	if err := ch.Exec(ctx, fmt.Sprintf(replicate, "mix_mt", "base", copies)); err != nil {
		b.Fatal(err)
	}
	if err := ch.Exec(ctx, "CREATE TABLE mix ENGINE = Memory AS SELECT * FROM mix_mt"); err != nil {
		b.Fatal(err)
	}
	rows, err := ch.Uint(ctx, "SELECT count() FROM mix")
	if err != nil {
		b.Fatal(err)
	}
	pid := strconv.Itoa(env.ClickHouse.Pid())
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("BENCH_STORAGE_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	names := []string{"before_0900", "with_0900"}
	user, sys := map[string][]float64{}, map[string][]float64{}
	for range b.N {
		for r := range rounds {
			for k := range names {
				name := names[(k+r)%len(names)]
				table := "cpu_" + name
				if err := ch.Exec(ctx, "CREATE TABLE "+table+" AS packets"); err != nil {
					b.Fatal(err)
				}
				if name == "before_0900" {
					alterTable(b, ch, table, before0900)
				}
				if err := ch.Exec(ctx, "SYSTEM STOP MERGES "+table); err != nil {
					b.Fatal(err)
				}
				u0, s0 := procCPU(b, pid)
				if err := ch.Exec(ctx, "INSERT INTO "+table+" SELECT * FROM mix SETTINGS max_threads = 1, max_insert_threads = 1, "+
					"max_block_size = 100000, min_insert_block_size_rows = 100000"); err != nil {
					b.Fatal(err)
				}
				u1, s1 := procCPU(b, pid)
				user[name], sys[name] = append(user[name], u1-u0), append(sys[name], s1-s0)
				b.Logf("round %d %-12s %d rows: clickhouse user %.2f s, system %.2f s", r, name, rows, u1-u0, s1-s0)
				if err := ch.Exec(ctx, "DROP TABLE "+table+" SYNC"); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for _, name := range names {
		b.ReportMetric(medianOf(user[name]), name+"-user-s")
		b.ReportMetric(medianOf(sys[name]), name+"-sys-s")
	}
	b.ReportMetric(medianOf(user["with_0900"])/medianOf(user["before_0900"]), "with/before-user")
	b.Logf("medians over %d rounds: user %.2f / %.2f s, system %.2f / %.2f s (before / with 0900)", rounds,
		medianOf(user["before_0900"]), medianOf(user["with_0900"]), medianOf(sys["before_0900"]), medianOf(sys["with_0900"]))
}

// procCPU is testinfra.ProcCPU, failing tb when /proc cannot be read.
func procCPU(tb testing.TB, pid string) (user, sys float64) {
	user, sys, err := testinfra.ProcCPU(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return user, sys
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
