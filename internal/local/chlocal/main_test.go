package chlocal

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/local/cache"
)

// plBinary is the packetlake binary the tests spawn: the engine runs in child processes so
// tests can kill -9 it, and so the 566 MB engine never loads into the test binary.
var plBinary string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "chlocal-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	plBinary = filepath.Join(dir, "packetlake")
	t0 := time.Now()
	build := exec.Command("go", "build", "-o", plBinary, "github.com/packetlake/packetlake/cmd/packetlake")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build packetlake: %v\n%s", err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "built packetlake in %v\n", time.Since(t0).Round(time.Millisecond))

	// Fetch once up front so that a download problem (no npm, no network) fails the run with
	// its own message instead of being skipped, and spawn timings measure the server, not npm.
	cacheDir, err := cache.Dir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 = time.Now()
	if _, err := EnsureLib(ctx, cacheDir, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: fetch ClickHouse engine:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "engine ready in cache %s after %v\n", cacheDir, time.Since(t0).Round(time.Millisecond))
	return m.Run()
}

// spawn starts a child server on dir with free ports; the test fails with the child's stderr
// if it does not come up, and the child is stopped at cleanup.
func spawn(t *testing.T, dir string) *Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	p, err := Spawn(ctx, SpawnConfig{Binary: plBinary, DataDir: dir, LogPath: filepath.Join(t.TempDir(), "child.log")})
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	t.Logf("clickhouse-local pid %d ready in %v: tcp %s http %s", p.Pid(), time.Since(t0).Round(time.Millisecond), p.TCPAddr(), p.HTTPAddr())
	t.Cleanup(func() { p.Kill() })
	return p
}
