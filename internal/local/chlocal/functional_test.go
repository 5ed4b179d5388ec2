package chlocal

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetlake/packetlake/internal/chconn"
)

const rows = 1000

var base = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type row struct {
	id   uint64
	name string
	ts   time.Time
	ip   net.IP
}

func wantRow(i int) row {
	return row{uint64(i), "flow-" + strconv.Itoa(i), base.Add(time.Duration(i)*time.Microsecond + 7), net.IPv4(10, 0, byte(i>>8), byte(i)).To4()}
}

func connect(t *testing.T, addr string) driver.Conn {
	t.Helper()
	conn, err := chconn.Config{Addr: addr}.Open()
	if err != nil {
		t.Fatalf("open native %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// createAndFill makes an Atomic database (the default one is an Overlay in this mode) with a
// MergeTree table and inserts rows over the native protocol.
func createAndFill(t *testing.T, ctx context.Context, conn driver.Conn) {
	t.Helper()
	for _, q := range []string{
		"CREATE DATABASE pl ENGINE = Atomic",
		"CREATE TABLE pl.flows (id UInt64, name String, ts DateTime64(9), ip IPv4) ENGINE = MergeTree ORDER BY id",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO pl.flows")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	for i := range rows {
		r := wantRow(i)
		if err := b.Append(r.id, r.name, r.ts, r.ip); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}
}

// checkRows reads the table back and compares every value.
func checkRows(t *testing.T, ctx context.Context, conn driver.Conn) {
	t.Helper()
	rs, err := conn.Query(ctx, "SELECT id, name, ts, ip FROM pl.flows ORDER BY id")
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	defer rs.Close()
	n := 0
	for rs.Next() {
		var got row
		if err := rs.Scan(&got.id, &got.name, &got.ts, &got.ip); err != nil {
			t.Fatalf("scan: %v", err)
		}
		want := wantRow(n)
		if got.id != want.id || got.name != want.name || !got.ts.Equal(want.ts) || !got.ip.Equal(want.ip) {
			t.Fatalf("row %d = %+v, want %+v", n, got, want)
		}
		n++
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	if n != rows {
		t.Fatalf("read %d rows, want %d", n, rows)
	}
}

func httpGet(t *testing.T, addr, q string) string {
	t.Helper()
	client, err := chconn.Config{HTTPAddr: addr}.Client()
	if err != nil {
		t.Fatal(err)
	}
	body, err := client.Query(t.Context(), q, nil, nil)
	if err != nil {
		t.Fatalf("http %q: %v", q, err)
	}
	defer body.Close()
	b, _ := io.ReadAll(body)
	return string(b)
}

func TestServeNativeAndHTTP(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := spawn(t, dir)
	conn := connect(t, p.TCPAddr())
	createAndFill(t, ctx, conn)
	checkRows(t, ctx, conn)

	if got := httpGet(t, p.HTTPAddr(), "SELECT 1"); got != "1\n" {
		t.Errorf("http SELECT 1 = %q", got)
	}
	want := fmt.Sprintf("%d\t%d\tflow-999\t10.0.3.231\n", rows, rows*(rows-1)/2)
	if got := httpGet(t, p.HTTPAddr(), "SELECT count(), sum(id), max(name), argMax(ip, id) FROM pl.flows"); got != want {
		t.Errorf("http aggregate = %q, want %q", got, want)
	}

	// Stop with the client's idle connection still open: the engine must shut down by itself
	// rather than give up after its 5 s connection wait and _exit the process.
	t0 := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(p.Stderr(), "clickhouse stopped") {
		t.Errorf("clean-stop message missing; child stderr:\n%s", p.Stderr())
	}
	t.Logf("stopped in %v", time.Since(t0).Round(time.Millisecond))
}

func TestRestartAfterKillKeepsCommittedData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := spawn(t, dir)
	createAndFill(t, ctx, connect(t, p.TCPAddr()))
	if err := p.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}

	p2 := spawn(t, dir) // right away: Kill returns once the old process is reaped
	conn := connect(t, p2.TCPAddr())
	checkRows(t, ctx, conn)
	var ok uint8
	if err := conn.QueryRow(ctx, "CHECK TABLE pl.flows SETTINGS check_query_single_value_result = 1").Scan(&ok); err != nil || ok != 1 {
		t.Errorf("CHECK TABLE = %d, %v", ok, err)
	}
	if err := p2.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	for _, kind := range []string{"tcp", "http"} {
		cfg := SpawnConfig{Binary: plBinary, DataDir: t.TempDir()}
		if kind == "tcp" {
			cfg.TCPPort = port
		} else {
			cfg.HTTPPort = port
		}
		_, err := Spawn(context.Background(), cfg)
		want := fmt.Sprintf("%s port 127.0.0.1:%d is already in use", kind, port)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s port taken: err = %v, want it to contain %q", kind, err, want)
		}
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	p := spawn(t, dir)
	_, err := Spawn(context.Background(), SpawnConfig{Binary: plBinary, DataDir: dir})
	want := fmt.Sprintf("data dir %s is in use by another ClickHouse (pid %d)", dir, p.Pid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second server: err = %v, want it to contain %q", err, want)
	}
	// The first server is unharmed.
	if got := httpGet(t, p.HTTPAddr(), "SELECT 1"); got != "1\n" {
		t.Errorf("first server answers %q", got)
	}
}

func TestBrokenCacheIsReported(t *testing.T) {
	cache := t.TempDir()
	lib := LibPath(cache)
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, []byte("\x7fELF truncated"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Spawn(context.Background(), SpawnConfig{Binary: plBinary, DataDir: t.TempDir(), CacheDir: cache})
	want := "rm -rf " + filepath.Dir(lib) + " and retry"
	if err == nil || !strings.Contains(err.Error(), "is broken") || !strings.Contains(err.Error(), want) {
		t.Fatalf("broken cache: err = %v, want 'is broken' and %q", err, want)
	}
}

func TestReadyLineRoundTrip(t *testing.T) {
	line := ReadyLine("127.0.0.1:9000", "127.0.0.1:8123", "/data/with space")
	tcp, http, data, ok := parseReadyLine(line + "\n")
	if !ok || tcp != "127.0.0.1:9000" || http != "127.0.0.1:8123" || data != "/data/with space" {
		t.Fatalf("parse(%q) = %q %q %q %v", line, tcp, http, data, ok)
	}
	if _, _, _, ok := parseReadyLine("Logging warning to /x"); ok {
		t.Fatal("accepted a foreign line")
	}
}
