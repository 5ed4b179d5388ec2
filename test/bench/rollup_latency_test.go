package bench

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// rollupPoll measures when each sent query becomes queryable in a rollup, not only in packets
// (issue #18: "the rollups are queryable within the same bound"). dns_names_1m keeps one row
// per query name and minute, and every send has its own name (q<i>.bench.example), so the
// rollup says exactly which sends it holds, as packets' dns_qname does. A view's part commits
// apart from packets' part of the same insert, so the two latencies are measured apart.
type rollupPoll struct {
	query string
	warm  int          // sends before this index were the warm-up
	low   int          // every send below low has been seen
	seen  map[int]bool // sends at or above low already seen
	lat   []time.Duration
}

func newRollupPoll(db string, warm int) *rollupPoll {
	return &rollupPoll{
		// Only names above the contiguous seen prefix, and only the minutes from the oldest
		// send not yet seen on (minute leads the table's key): the poll reads the recent rows.
		query: "SELECT toInt64OrZero(extract(qname, '^q([0-9]+)\\.bench\\.example$')) AS i FROM " + db + ".dns_names_1m " +
			"WHERE host = 'e2e' AND minute >= toStartOfMinute(fromUnixTimestamp64Nano(?)) - INTERVAL 1 MINUTE AND i >= ?",
		warm: warm, low: warm, seen: map[int]bool{},
	}
}

// poll reads the sends that reached the rollup since the last poll; a send's latency is the
// start of the poll that first returns it minus its send time (an upper bound, as for packets).
func (r *rollupPoll) poll(b *testing.B, conn driver.Conn, sentNs []int64) {
	t := time.Now()
	var rows []struct {
		I int64 `ch:"i"`
	}
	if r.low >= len(sentNs) {
		return // nothing sent that is not seen yet
	}
	if err := conn.Select(context.Background(), &rows, r.query, sentNs[r.low], r.low); err != nil {
		b.Fatal(err)
	}
	for _, row := range rows {
		i := int(row.I)
		if i < r.low || i >= len(sentNs) || r.seen[i] {
			continue
		}
		r.seen[i] = true
		r.lat = append(r.lat, time.Duration(t.UnixNano()-sentNs[i]))
	}
	for r.seen[r.low] {
		delete(r.seen, r.low)
		r.low++
	}
}

// percentile of lat (sorted here); 0 for none.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}
