package enrich

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/schema"
	"github.com/packetlake/packetlake/test/analytics"
)

// The tests run against a real ClickHouse; the passive DNS test decodes the shared captures
// through the real BPF program, hence root.
var env *testinfra.Env

func TestMain(m *testing.M) {
	os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true, Root: true}, &env))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// migrated returns a fresh database with the schema applied, and a client for it.
func migrated(t testing.TB) (string, analytics.CH) {
	t.Helper()
	db := env.Database(t)
	if err := schema.Migrate(testCtx(t), env.CH(t), db); err != nil {
		t.Fatalf("migrate %s: %v", db, err)
	}
	ch, err := analytics.NewCH(env.CHConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	return db, ch
}

// waitFor polls cond until it holds or a minute passes: the state the test waits for is
// observed, never assumed after a sleep.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s (last error: %v)", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
