package analytics

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
	"github.com/packetlake/packetlake/schema"
)

var env *testinfra.Env

// Root: the captures are decoded by loading the BPF program (BPF_PROG_TEST_RUN).
func TestMain(m *testing.M) {
	os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true, Root: true}, &env))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// migrated returns a fresh database with the schema applied, and a client for it.
func migrated(t testing.TB) CH {
	t.Helper()
	db := env.Database(t)
	if err := schema.Migrate(testCtx(t), env.CH(t), db); err != nil {
		t.Fatalf("migrate %s: %v", db, err)
	}
	ch, err := NewCH(env.CHConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

var (
	capturesOnce sync.Once
	captures     []Capture
	capturesErr  error

	knownOnce sync.Once
	knownCH   CH
	knownDS   *Dataset
	knownErr  error
)

// sharedCaptures decodes the shared captures once per test binary.
func sharedCaptures(t testing.TB) []Capture {
	t.Helper()
	capturesOnce.Do(func() {
		dir, err := os.MkdirTemp(env.Dir, "captures-")
		if err != nil {
			capturesErr = err
			return
		}
		captures, capturesErr = DecodeCaptures(testpcaps.Dir(), dir)
	})
	if capturesErr != nil {
		t.Fatalf("decode the shared captures: %v", capturesErr)
	}
	return captures
}

// known returns a database holding the known dataset, loaded once per test binary and only read
// by the tests: every batch inserted with its token, then the replays (which must be dropped).
func known(t testing.TB) (CH, *Dataset) {
	t.Helper()
	caps := sharedCaptures(t)
	knownOnce.Do(func() {
		knownCH = migrated(t)
		knownDS = Build(caps, time.Now().UTC().Truncate(time.Hour).Add(-2*time.Hour))
		ctx := testCtx(t)
		for _, b := range append(append([]Batch{}, knownDS.Batches...), knownDS.Replays...) {
			if knownErr = knownCH.InsertPackets(ctx, b.Packets, b.Token); knownErr != nil {
				return
			}
		}
	})
	if knownErr != nil {
		t.Fatalf("load the known dataset: %v", knownErr)
	}
	return knownCH, knownDS
}
