package testinfra

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

var counter atomic.Int64

// uniqueName is a name no other test of this binary uses, readable in the server logs.
func uniqueName(t testing.TB, prefix string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s_%s_%d", prefix, name, counter.Add(1))
}

// CHConfig is how to reach the test ClickHouse (both addresses), on database db ("": the
// server's default).
func (e *Env) CHConfig(db string) chconn.Config {
	return chconn.Config{Addr: e.ClickHouse.TCPAddr(), HTTPAddr: e.ClickHouse.HTTPAddr(), Database: db}
}

// CH opens a native-protocol connection to the test ClickHouse, closed when the test ends.
func (e *Env) CH(t testing.TB) driver.Conn {
	t.Helper()
	conn, err := e.CHConfig("").Open(func(o *clickhouse.Options) { o.DialTimeout = 10 * time.Second })
	if err != nil {
		t.Fatalf("connect to clickhouse: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Database creates an empty database (ENGINE=Atomic: the default database of this server is an
// Overlay) for one test and returns its name.
func (e *Env) Database(t testing.TB) string {
	t.Helper()
	name := uniqueName(t, "db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.CH(t).Exec(ctx, "CREATE DATABASE "+name+" ENGINE = Atomic"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return name
}

// Topic creates a topic with the given partitions for one test and returns its name.
func (e *Env) Topic(t testing.TB, partitions int32) string {
	t.Helper()
	name := strings.ReplaceAll(uniqueName(t, "topic"), "_", "-")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkalocal.CreateTopic(ctx, e.Kafka.Addr(), name, partitions); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	return name
}

// FreeAddr returns a loopback host:port nothing listens on right now: for a server a test starts
// (or for a broker that is down).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
