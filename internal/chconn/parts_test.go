package chconn_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
)

// A body of several MB in parts of every size (a few bytes to over a MB, rows split across
// parts) reaches ClickHouse byte for byte through SendParts: the server's count and sum of the
// rows and of their lengths match what was sent.
func TestSendPartsLargeBody(t *testing.T) {
	db := env.Database(t)
	c := client(t, env.CHConfig(db), chconn.Timeout(time.Minute))
	ctx := t.Context()
	if err := c.Exec(ctx, "CREATE TABLE t (id UInt64, s String) ENGINE = MergeTree ORDER BY id", nil); err != nil {
		t.Fatal(err)
	}
	var body []byte
	var rows, idSum, lenSum uint64
	for i := range uint64(200_000) {
		s := fmt.Sprintf("row-%d-%0*d", i, int(i%37), i)
		body = fmt.Appendf(body, "%d\t%s\n", i, s)
		rows, idSum, lenSum = rows+1, idSum+i, lenSum+uint64(len(s))
	}
	var parts [][]byte
	for size, rest := 1, body; len(rest) > 0; size = size*3 + 7 {
		if size > 1<<21 {
			size = 5 // back to small parts: many of each kind
		}
		n := min(size, len(rest))
		parts, rest = append(parts, rest[:n]), rest[n:]
	}
	ins := c.PrepareInsert("INSERT INTO t FORMAT TabSeparated", nil)
	if err := ins.SendParts(ctx, parts, ""); err != nil {
		t.Fatal(err)
	}
	var n, ids, lens uint64
	err := c.Rows(ctx, "SELECT count() AS n, sum(id) AS ids, sum(length(s)) AS lens FROM t", nil, func(r map[string]json.RawMessage) error {
		return errors.Join(json.Unmarshal(r["n"], &n), json.Unmarshal(r["ids"], &ids), json.Unmarshal(r["lens"], &lens))
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != rows || ids != idSum || lens != lenSum {
		t.Errorf("stored %d rows, id sum %d, length sum %d; sent %d, %d, %d (%d bytes in %d parts)", n, ids, lens, rows, idSum, lenSum, len(body), len(parts))
	}
}
