package chlocal

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
)

// TestClusterShardsDistributedInsert: two servers started from their config files form a
// cluster: a Distributed table on either spreads foreground inserts over both shards and reads
// both; a repeated insert token is dropped on each shard; with one shard killed a foreground
// insert fails, and the same insert, retried after the shard's restart, lands exactly once.
func TestClusterShardsDistributedInsert(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, ClusterConfig{Binary: plBinary, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	for i, addr := range c.HTTPAddrs() {
		for _, q := range []string{
			"CREATE DATABASE d ENGINE = Atomic",
			"CREATE TABLE d.t_local (n UInt64) ENGINE = MergeTree ORDER BY n SETTINGS non_replicated_deduplication_window = 100",
			"CREATE TABLE d.t AS d.t_local ENGINE = Distributed(" + c.Name() + ", d, t_local, n)",
		} {
			httpGet(t, addr, q)
		}
		if got := strings.TrimSpace(httpGet(t, addr, "SELECT getMacro('shard')")); got != string(rune('1'+i)) {
			t.Errorf("server %d: macro shard = %q", i+1, got)
		}
	}
	insert := func(addr, token string) error {
		client, err := chconn.Config{HTTPAddr: addr}.Client()
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		return client.Exec(ctx, "INSERT INTO d.t SELECT number FROM numbers(1000)",
			map[string]string{"distributed_foreground_insert": "1", "insert_deduplication_token": token})
	}
	count := func(addr, table string) string {
		return strings.TrimSpace(httpGet(t, addr, "SELECT count() FROM d."+table))
	}
	h1, h2 := c.HTTPAddrs()[0], c.HTTPAddrs()[1]
	for _, addr := range []string{h1, h2, h1} { // the same token through either server
		if err := insert(addr, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if count(h1, "t") != "1000" || count(h1, "t_local") == "0" || count(h2, "t_local") == "0" {
		t.Fatalf("after 3 inserts of one token: %s rows, %s + %s per shard; want 1000 over both", count(h1, "t"), count(h1, "t_local"), count(h2, "t_local"))
	}
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := insert(h1, "b"); err == nil {
		t.Fatal("a foreground insert succeeded with shard 2 down")
	}
	if err := c.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := insert(h1, "b"); err != nil {
		t.Fatalf("retry after the restart: %v", err)
	}
	if got := count(h1, "t"); got != "2000" {
		t.Errorf("after the retry: %s rows, want 2000 (shard 1's part of the failed insert dropped by its token)", got)
	}
	if c.Crashes() != 0 {
		t.Errorf("%d servers exited by themselves", c.Crashes())
	}
}
