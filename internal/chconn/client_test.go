package chconn_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/testkit/tlscerts"
	"github.com/packetlake/packetlake/internal/tlsconf"
)

func client(t *testing.T, cfg chconn.Config, opts ...chconn.ClientOption) *chconn.Client {
	t.Helper()
	c, err := cfg.Client(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// read returns a function reading a Query's result: read(t)(c.Query(...)).
func read(t *testing.T) func(io.ReadCloser, error) string {
	return func(body io.ReadCloser, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// Parameters are bound by the server, whatever they hold; settings apply to the statement.
func TestQueryParams(t *testing.T) {
	c := client(t, env.CHConfig(""), chconn.Settings(map[string]string{"session_timezone": "UTC"}))
	ctx := t.Context()
	got := read(t)(c.Query(ctx, "SELECT {a:UInt32} + {b:UInt32}, {s:String}, timezone()",
		map[string]string{"a": "2", "b": "3", "s": "x'); DROP TABLE t; --"}, nil))
	if want := "5\tx\\'); DROP TABLE t; --\tUTC\n"; got != want {
		t.Errorf("query: got %q, want %q", got, want)
	}
	got = read(t)(c.Query(ctx, "SELECT number FROM system.numbers LIMIT 2", nil, map[string]string{"default_format": "CSV"}))
	if got != "0\n1\n" {
		t.Errorf("query with default_format CSV: got %q", got)
	}
}

// Exec creates a table, Insert and a PreparedInsert fill it (the token drops a repeated block; a row may come in parts),
// Rows reads it back by column name.
func TestExecInsertRows(t *testing.T) {
	db := env.Database(t)
	c := client(t, env.CHConfig(db), chconn.Timeout(time.Minute))
	ctx := t.Context()
	if err := c.Exec(ctx, "CREATE TABLE t (id UInt64, name String) ENGINE = MergeTree ORDER BY id "+
		"SETTINGS non_replicated_deduplication_window = 100", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Insert(ctx, "INSERT INTO t FORMAT JSONEachRow", strings.NewReader(`{"id":1,"name":"a"}`+"\n"+`{"id":2,"name":"b"}`), nil); err != nil {
		t.Fatal(err)
	}
	ins := c.PrepareInsert("INSERT INTO t FORMAT TabSeparated", map[string]string{"insert_deduplicate": "1"})
	for range 2 { // the second is a retry: same token, dropped
		if err := ins.SendParts(ctx, [][]byte{[]byte("3\t"), []byte("c\n")}, "token-1"); err != nil { // one row in two parts
			t.Fatal(err)
		}
	}
	if err := ins.SendParts(ctx, [][]byte{[]byte("4\td\n")}, ""); err != nil {
		t.Fatal(err)
	}
	var n, sum uint64
	var names []string
	err := c.Rows(ctx, "SELECT count() AS n, sum(id) AS s, groupArray(name) AS names FROM (SELECT * FROM t ORDER BY id) WHERE id >= {min:UInt64}",
		map[string]string{"min": "1"}, func(r map[string]json.RawMessage) error {
			return errors.Join(json.Unmarshal(r["n"], &n), json.Unmarshal(r["s"], &sum), json.Unmarshal(r["names"], &names))
		})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || sum != 10 || strings.Join(names, "") != "abcd" {
		t.Errorf("rows: n=%d sum=%d names=%v, want 4, 10, [a b c d]", n, sum, names)
	}
}

// A statement ClickHouse refuses is an error naming the server and carrying its message.
func TestBadQuery(t *testing.T) {
	c := client(t, env.CHConfig(""))
	ctx := t.Context()
	addr := env.ClickHouse.HTTPAddr()
	if _, err := c.Query(ctx, "SELEC 1", nil, nil); err == nil || !strings.Contains(err.Error(), "clickhouse at "+addr) || !strings.Contains(err.Error(), "Syntax error") {
		t.Errorf("query: got %v, want a syntax error from clickhouse at %s", err, addr)
	}
	if err := c.Exec(ctx, "DROP TABLE no_such_db.no_such_table", nil); err == nil || !strings.Contains(err.Error(), "UNKNOWN_DATABASE") {
		t.Errorf("exec: got %v, want UNKNOWN_DATABASE", err)
	}
	if err := c.Insert(ctx, "INSERT INTO no_such_table FORMAT CSV", strings.NewReader("1\n"), nil); err == nil {
		t.Error("insert into a missing table succeeded")
	}
	err := c.Rows(ctx, "SELECT {x:UInt8}", nil, func(map[string]json.RawMessage) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "UNKNOWN_QUERY_PARAMETER") {
		t.Errorf("rows with a parameter unbound: got %v", err)
	}
}

// Open reaches the native protocol, on the database when one is set.
func TestOpen(t *testing.T) {
	db := env.Database(t)
	conn, err := env.CHConfig(db).Open()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got string
	if err := conn.QueryRow(t.Context(), "SELECT currentDatabase()").Scan(&got); err != nil || got != db {
		t.Errorf("currentDatabase: %q, %v; want %q", got, err, db)
	}
}

// Over TLS both the native protocol and HTTP (then https) go through a TLS-terminating proxy:
// with its CA they succeed; without it the certificate is refused.
func TestOverTLS(t *testing.T) {
	px := tlscerts.Start(t, env.ClickHouse.TCPAddr(), env.ClickHouse.HTTPAddr())
	cfg := chconn.Config{Addr: px.Native, HTTPAddr: px.HTTP, TLS: tlsconf.Files{Enable: true, CAFile: px.CAFile}}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if got := read(t)(client(t, cfg).Query(ctx, "SELECT 1", nil, nil)); got != "1\n" {
		t.Errorf("https: got %q", got)
	}
	conn, err := cfg.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Ping(ctx); err != nil {
		t.Errorf("native over TLS: %v", err)
	}

	cfg.TLS.CAFile = ""
	var unknown x509.UnknownAuthorityError
	if _, err := client(t, cfg).Query(ctx, "SELECT 1", nil, nil); !errors.As(err, &unknown) {
		t.Errorf("https without the CA: got %v, want an unknown-authority error", err)
	}
}
