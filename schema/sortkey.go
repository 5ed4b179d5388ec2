package schema

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// A migration never shrinks a sorting key. Every file is re-run over existing tables (a crash
// between its statements and its bookkeeping row, or TestMigrateIdempotent), and an older file's
// `MODIFY ORDER BY` then names a key that a later file has grown (0600's flows_1m key, which
// 0903 extends by vlan_id and ip_version). ClickHouse 26.7 accepts the shorter key silently,
// and merges of an (Aggregating)MergeTree would then fold rows that differ only in the dropped
// columns into one: a silent data bug. The later file's re-run is then refused ("Existing column
// ... is used in the expression that was added to the sorting key"). So before an ALTER runs,
// its MODIFY ORDER BY is left out when the table's current key already equals or extends the
// requested one (the same leading expressions); the ALTER's other commands still run.

var (
	reAlterTarget = regexp.MustCompile("(?is)^ALTER\\s+TABLE\\s+`?(\\w+)`?\\.`?(\\w+)`?\\s+(.*)$")
	reModifyOrder = regexp.MustCompile(`(?is)^MODIFY\s+ORDER\s+BY\s+(.*)$`)
	reHasOrderBy  = regexp.MustCompile(`(?i)\bMODIFY\s+ORDER\s+BY\b`)
)

// withoutSatisfiedKey returns stmt (database name in place) without a MODIFY ORDER BY that
// the table's current sorting key already satisfies, or "" when nothing else is left to run.
// Any other statement comes back unchanged.
func withoutSatisfiedKey(ctx context.Context, conn Conn, stmt string) (string, error) {
	stmt = strings.TrimSpace(stmt)
	m := reAlterTarget.FindStringSubmatch(stmt)
	if m == nil || !reHasOrderBy.MatchString(m[3]) {
		return stmt, nil
	}
	database, table, cmds := m[1], m[2], m[3]
	parts, err := splitTopLevel(cmds)
	if err != nil {
		return "", fmt.Errorf("ALTER TABLE %s.%s: %w", database, table, err)
	}
	var current []string
	var kept []string
	for _, p := range parts {
		o := reModifyOrder.FindStringSubmatch(p)
		if o == nil {
			kept = append(kept, p)
			continue
		}
		if current == nil {
			if current, err = sortingKey(ctx, conn, database, table); err != nil {
				return "", err
			}
		}
		want, err := keyExprs(o[1])
		if err != nil {
			return "", fmt.Errorf("ALTER TABLE %s.%s: %w", database, table, err)
		}
		if !extends(current, want) {
			kept = append(kept, p)
		}
	}
	if len(kept) == len(parts) {
		return stmt, nil
	}
	if len(kept) == 0 {
		return "", nil
	}
	head := stmt[:len(stmt)-len(cmds)]
	return head + strings.Join(kept, ",\n    "), nil
}

// sortingKey reads the table's sorting key expressions; nil if the table does not exist (the
// ALTER then fails as it would have).
func sortingKey(ctx context.Context, conn Conn, database, table string) ([]string, error) {
	var rows []struct {
		Key string `ch:"sorting_key"`
	}
	if err := conn.Select(ctx, &rows, "SELECT sorting_key FROM system.tables WHERE database = ? AND name = ?", database, table); err != nil {
		return nil, fmt.Errorf("read sorting key of %s.%s: %w", database, table, err)
	}
	if len(rows) == 0 {
		return []string{}, nil
	}
	return keyExprs(rows[0].Key)
}

// keyExprs splits a key, "(a, b)" or "a, b", into its expressions, without spaces or backticks
// so that a migration's text compares with system.tables' formatting of simple columns.
func keyExprs(key string) ([]string, error) {
	key = strings.TrimSpace(key)
	if strings.HasPrefix(key, "(") {
		if end, err := closingParen(key); err == nil && end == len(key)-1 {
			key = key[1:end]
		}
	}
	parts, err := splitTopLevel(key)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p = strings.NewReplacer(" ", "", "\n", "", "\t", "", "`", "").Replace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// extends says whether current starts with every expression of want, in order.
func extends(current, want []string) bool {
	if len(want) == 0 || len(current) < len(want) {
		return false
	}
	for i := range want {
		if current[i] != want[i] {
			return false
		}
	}
	return true
}
