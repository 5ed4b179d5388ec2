package schema_test

import (
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/packetlake/packetlake/schema"
)

const flowsKey0903 = "minute, host, iface, dst_addr, src_addr, ip_proto, dst_port, src_port, tunnel_type, tunnel_id, vlan_id, ip_version"

// TestReapplyKeepsLongerKey: 0600 re-applied after 0903 (its bookkeeping row lost) must leave
// flows_1m's sorting key as 0903 made it. ClickHouse would take 0600's shorter MODIFY ORDER BY
// silently, and merges would then fold rows that differ only in vlan_id; the runner drops that
// command instead (sortkey.go). Then 0903 re-applied, with the key already in place, runs too.
func TestReapplyKeepsLongerKey(t *testing.T) {
	conn := connect(t)
	const db = "rekey"
	if err := schema.Migrate(ctx(t), conn, db); err != nil {
		t.Fatal(err)
	}
	if got := sortingKey(t, conn, db, "flows_1m"); got != flowsKey0903 {
		t.Fatalf("flows_1m's key after migrating: %q, want %q", got, flowsKey0903)
	}
	for _, v := range []int{600, 903} {
		if err := conn.Exec(ctx(t), "ALTER TABLE "+db+".schema_migrations DELETE WHERE version = ? SETTINGS mutations_sync = 1", v); err != nil {
			t.Fatal(err)
		}
		if err := schema.Migrate(ctx(t), conn, db); err != nil {
			t.Fatalf("re-applying %04d: %v", v, err)
		}
		if got := sortingKey(t, conn, db, "flows_1m"); got != flowsKey0903 {
			t.Fatalf("flows_1m's key after re-applying %04d: %q, want %q", v, got, flowsKey0903)
		}
	}
	// The key still tells VLANs apart when rows merge.
	for _, vlan := range []int{10, 20} {
		if err := conn.Exec(ctx(t), "INSERT INTO "+db+".flows_1m (minute, host, vlan_id, packets) VALUES ('2026-12-07 00:00:00', 'h', ?, 1)", vlan); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Exec(ctx(t), "OPTIMIZE TABLE "+db+".flows_1m FINAL"); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := conn.QueryRow(ctx(t), "SELECT count() FROM "+db+".flows_1m").Scan(&n); err != nil || n != 2 {
		t.Fatalf("flows_1m rows of two VLANs after a merge: %d (%v), want 2", n, err)
	}
}

func sortingKey(t *testing.T, conn driver.Conn, db, table string) string {
	t.Helper()
	var key string
	if err := conn.QueryRow(ctx(t), "SELECT sorting_key FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&key); err != nil {
		t.Fatal(err)
	}
	return key
}
