package bench

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/ingester"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/schema"
)

// cpuSeconds is user+system CPU time of a process from /proc/<pid>/stat ("self" for this one).
func cpuSeconds(tb testing.TB, pid string) float64 {
	u, s := userSys(tb, pid)
	return u + s
}

// userSys is testinfra.ProcCPU, failing tb when /proc cannot be read.
func userSys(tb testing.TB, pid string) (user, sys float64) {
	user, sys, err := testinfra.ProcCPU(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return user, sys
}

// cpuSnap is the CPU of the three processes that do the work (user+system), and the user and
// system CPU of this process and ClickHouse apart: on these VMs ClickHouse's system CPU (creating
// part files) drifts with the file churn of the whole run while its user CPU stays steady.
type cpuSnap struct {
	self, ch, kafka  float64
	selfUser, chUser float64
	selfSys, chSys   float64
}

func snapCPU(tb testing.TB) cpuSnap {
	su, ss := userSys(tb, "self")
	cu, cs := userSys(tb, strconv.Itoa(env.ClickHouse.Pid()))
	return cpuSnap{
		self: su + ss, ch: cu + cs,
		kafka:    cpuSeconds(tb, strconv.Itoa(env.Kafka.Pid())),
		selfUser: su, chUser: cu, selfSys: ss, chSys: cs,
	}
}

func (a cpuSnap) sub(b cpuSnap) cpuSnap {
	return cpuSnap{a.self - b.self, a.ch - b.ch, a.kafka - b.kafka,
		a.selfUser - b.selfUser, a.chUser - b.chUser, a.selfSys - b.selfSys, a.chSys - b.chSys}
}

func count(tb testing.TB, conn driver.Conn, q string) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n uint64
	var err error
	for i := 0; i < 3; i++ {
		if err = conn.QueryRow(ctx, q).Scan(&n); err == nil {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("%s: %v", q, err)
	return 0
}

func chExec(tb testing.TB, conn driver.Conn, q string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := conn.Exec(ctx, q); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
}

// migrated creates a database with packetlake's migrations applied; without rollups the
// materialized views of migrations 01xx are dropped, so inserts go to packets alone.
func migrated(tb testing.TB, conn driver.Conn, rollups bool) string {
	tb.Helper()
	db := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := schema.Migrate(ctx, conn, db); err != nil {
		tb.Fatal(err)
	}
	if !rollups {
		var views []struct {
			Name string `ch:"name"`
		}
		if err := conn.Select(ctx, &views, "SELECT name FROM system.tables WHERE database = ? AND engine = 'MaterializedView'", db); err != nil {
			tb.Fatal(err)
		}
		for _, v := range views {
			chExec(tb, conn, "DROP VIEW "+db+"."+v.Name+" SYNC")
		}
	}
	return db
}

func views(tb testing.TB, conn driver.Conn, db string) uint64 {
	return count(tb, conn, "SELECT count() FROM system.tables WHERE database = '"+db+"' AND engine = 'MaterializedView'")
}

// alterPackets runs each of alters ("MODIFY COLUMN ...", "MODIFY SETTING ...") on db.packets, in
// order: how the benchmarks undo later migrations to price a table as it was.
func alterPackets(b *testing.B, conn driver.Conn, db string, alters []string) {
	for _, a := range alters {
		chExec(b, conn, "ALTER TABLE "+db+".packets "+a)
	}
}

// startIngester starts an ingester with cfg and a registry of its own, whose metrics the
// benchmark logs (batches by cut, INSERT durations); the caller stops it.
func startIngester(b *testing.B, cfg ingester.Config) (*ingester.Ingester, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	in, err := ingester.New(cfg, ingester.Dependencies{Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return in, reg
}

// waitNoInsert returns once no INSERT into db is running: a part of packets is visible before
// the INSERT that wrote it has run its views and finished, so CPU read as soon as count()
// reaches N misses that INSERT's tail (BENCHMARKS.md, vdedup). It fails at deadline.
func waitNoInsert(tb testing.TB, conn driver.Conn, db string, deadline time.Time) {
	for count(tb, conn, "SELECT count() FROM system.processes WHERE query_kind = 'Insert' AND current_database = '"+db+"'") > 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("an INSERT into %s still runs at the deadline", db)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
