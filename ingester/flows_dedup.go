package ingester

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// A flow message may land on the flows topic twice: the collector sends a message it has no
// acknowledgement for again, with the very same bytes and identity (host, collector_id,
// export_seq, chunk), and the first copy may have been written after all (collector/
// flowexport.go). The two copies sit at different offsets, so batch tokens cannot tell them
// apart, and they may be far apart: minutes of outage, an ingester restart or a rebalance in
// between. So before a batch's first INSERT the sink looks its identities up in the flows table
// itself, and drops those already stored (and repeats within the batch). The lookup is exact and
// has no window: a copy's rows carry the message's own time as ts, which the query names (so
// only the parts of that day are read). Once decided, a batch is retried with the very same rows
// and token.

// flowMsgID identifies a flow message.
type flowMsgID struct {
	host      string
	collector uint64
	seq       uint64
	chunk     uint32
}

// idOf is m's identity; false for a message of a collector from before identities (chunk 0),
// which is stored as it comes.
func idOf(m *flowMessage) (flowMsgID, bool) {
	return flowMsgID{host: m.Host, collector: m.CollectorID, seq: m.ExportSeq, chunk: m.Chunk}, m.Chunk > 0
}

// recentFlowIDs is how many identities a sink remembers having stored, newest kept: a copy that
// follows soon is dropped even before the table shows the first (a Distributed table's
// asynchronous inserts).
const recentFlowIDs = 4096

// recentIDs is a bounded set of identities, the oldest forgotten first.
type recentIDs struct {
	set  map[flowMsgID]struct{}
	ring []flowMsgID // insertion order; next is the oldest once full
	next int
}

func (r *recentIDs) has(id flowMsgID) bool {
	_, ok := r.set[id]
	return ok
}

func (r *recentIDs) add(id flowMsgID) {
	if r.set == nil {
		r.set = make(map[flowMsgID]struct{}, recentFlowIDs)
	}
	if r.has(id) {
		return
	}
	if len(r.ring) < recentFlowIDs {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % recentFlowIDs
	}
	r.set[id] = struct{}{}
}

// lookupChunk bounds the timestamps in one lookup query, far under max_query_size.
const lookupChunk = 500

// storedFlowIDs returns the identities of msgs the flows table holds rows of.
func storedFlowIDs(ctx context.Context, conn driver.Conn, msgs []*flowMessage) (map[flowMsgID]bool, error) {
	stored := map[flowMsgID]bool{}
	for len(msgs) > 0 {
		part := msgs[:min(len(msgs), lookupChunk)]
		msgs = msgs[len(part):]
		times, collectors := map[int64]bool{}, map[uint64]bool{}
		var ts, cs []string
		for _, m := range part {
			if ns := m.Time.UnixNano(); !times[ns] {
				times[ns] = true
				ts = append(ts, "fromUnixTimestamp64Nano(toInt64("+strconv.FormatInt(ns, 10)+"))")
			}
			if !collectors[m.CollectorID] {
				collectors[m.CollectorID] = true
				cs = append(cs, strconv.FormatUint(m.CollectorID, 10))
			}
		}
		rows, err := conn.Query(ctx, "SELECT DISTINCT host, collector_id, export_seq, chunk FROM flows WHERE ts IN ("+
			strings.Join(ts, ", ")+") AND collector_id IN ("+strings.Join(cs, ", ")+") AND chunk > 0")
		if err != nil {
			return nil, fmt.Errorf("look up stored flow messages: %w", err)
		}
		for rows.Next() {
			var id flowMsgID
			if err := rows.Scan(&id.host, &id.collector, &id.seq, &id.chunk); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up stored flow messages: %w", err)
			}
			stored[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("look up stored flow messages: %w", err)
		}
	}
	return stored, nil
}
