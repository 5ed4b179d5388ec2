package schema

import "testing"

// TestKeyExtends: how a migration's requested key compares with system.tables.sorting_key.
func TestKeyExtends(t *testing.T) {
	for _, c := range []struct {
		current, want string
		satisfied     bool
	}{
		{"minute, host, tunnel_id, vlan_id", "(minute, host, tunnel_id)", true}, // a later migration grew it
		{"minute, host, tunnel_id", "(minute, host, tunnel_id)", true},          // re-run of the same file
		{"minute, host", "(minute, host, tunnel_id)", false},                    // an upgrade: let it grow
		{"minute, host, vlan_id", "(minute, host, tunnel_id)", false},           // another key: ClickHouse decides
		{"toDate(ts), `host`", "(toDate(ts),\n    host)", true},                 // spacing and quoting
		{"cityHash64(a, b), c", "cityHash64(a, b)", true},                       // commas inside calls
		{"", "(minute)", false},            // no such table
		{"minute, host", "tuple()", false}, // not a prefix
	} {
		cur, err := keyExprs(c.current)
		if err != nil {
			t.Fatal(err)
		}
		want, err := keyExprs(c.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := extends(cur, want); got != c.satisfied {
			t.Errorf("key %q, requested %q: satisfied %v, want %v", c.current, c.want, got, c.satisfied)
		}
	}
}
