package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// passiveDNSInsert ties names to addresses for the packets captured in [from, to): a DNS
// response's question name to each A/AAAA answer, a ClientHello's SNI and an HTTP Host to the
// address the packet was sent to. Names are lower-cased without a trailing dot; a Host or SNI
// that is an address literal is no name; an HTTP Host loses its port.
const passiveDNSInsert = `INSERT INTO passive_dns (addr, name, source, first_seen, last_seen)
SELECT addr, name, source, min(ts), max(ts)
FROM
(
    SELECT toIPv6(arrayJoin(splitByChar(' ', dns_answer_addrs))) AS addr,
           trim(TRAILING '.' FROM lower(dns_qname)) AS name, 'dns' AS source, ts
    FROM packets
    WHERE ts >= fromUnixTimestamp64Nano({from:Int64}, 'UTC') AND ts < fromUnixTimestamp64Nano({to:Int64}, 'UTC')
      AND dns_is_response = 1 AND dns_answer_addrs != '' AND dns_qname != ''
    UNION ALL
    SELECT dst_addr, trim(TRAILING '.' FROM lower(tls_sni)), 'sni', ts
    FROM packets
    WHERE ts >= fromUnixTimestamp64Nano({from:Int64}, 'UTC') AND ts < fromUnixTimestamp64Nano({to:Int64}, 'UTC')
      AND tls_sni != ''
    UNION ALL
    SELECT dst_addr, trim(TRAILING '.' FROM replaceRegexpOne(lower(http_host), ':[0-9]+$', '')), 'http', ts
    FROM packets
    WHERE ts >= fromUnixTimestamp64Nano({from:Int64}, 'UTC') AND ts < fromUnixTimestamp64Nano({to:Int64}, 'UTC')
      AND http_host != ''
)
WHERE name != '' AND NOT isIPv4String(name) AND NOT isIPv6String(trim(BOTH '[]' FROM name))
GROUP BY addr, name, source`

// passiveDNS is the cycle's state: the start of the next window.
type passiveDNS struct {
	from time.Time
}

// startPassiveDNS sets the first window's start: the newest name seen minus the overlap, or,
// with an empty table, Backfill before now (the beginning of time for 0).
func (e *Enricher) startPassiveDNS(ctx context.Context) error {
	var last int64
	err := e.ch.Rows(ctx, "SELECT toUnixTimestamp64Nano(max(last_seen)) AS l, count() AS n FROM passive_dns", nil,
		func(r map[string]json.RawMessage) error {
			var n uint64
			if err := json.Unmarshal(r["n"], &n); err != nil || n == 0 {
				return err
			}
			return json.Unmarshal(r["l"], &last)
		})
	if err != nil {
		return fmt.Errorf("read passive_dns: %w", err)
	}
	switch {
	case last > 0:
		e.pdns.from = time.Unix(0, last).Add(-e.cfg.PassiveDNSOverlap)
	case e.cfg.PassiveDNSBackfill == 0:
		e.pdns.from = time.Unix(0, 0)
	default:
		e.pdns.from = e.now().Add(-e.cfg.PassiveDNSBackfill)
	}
	return nil
}

// passiveDNSCycle runs one window [from, now) and reloads the dictionary when rows were added.
// A failed cycle leaves from where it was, so the next one reads the window again.
func (e *Enricher) passiveDNSCycle(ctx context.Context) error {
	to := e.now()
	before, err := e.passiveDNSCount(ctx)
	if err != nil {
		return err
	}
	params := map[string]string{
		"from": strconv.FormatInt(e.pdns.from.UnixNano(), 10),
		"to":   strconv.FormatInt(to.UnixNano(), 10),
	}
	// wait_end_of_query: an error half-way is the response's status, not text after a 200.
	body, err := e.ch.Query(ctx, passiveDNSInsert, params, map[string]string{"wait_end_of_query": "1"})
	if err != nil {
		return fmt.Errorf("passive dns insert: %w", err)
	}
	_, err = io.Copy(io.Discard, body)
	body.Close()
	if err != nil {
		return fmt.Errorf("passive dns insert: %w", err)
	}
	after, err := e.passiveDNSCount(ctx)
	if err != nil {
		return err
	}
	// An INSERT of no rows makes no part, so count() moves exactly when rows were added (a
	// merge in between can only lower it; the dictionary's LIFETIME catches that rare case).
	if after > before {
		e.m.pdnsRows.Add(float64(after - before))
		if err := e.ch.Exec(ctx, "SYSTEM RELOAD DICTIONARY `"+e.cfg.ClickHouse.Database+"`.passive_dns_dict", nil); err != nil {
			return fmt.Errorf("reload passive_dns_dict: %w", err)
		}
	}
	e.pdns.from = to.Add(-e.cfg.PassiveDNSOverlap)
	return nil
}

func (e *Enricher) passiveDNSCount(ctx context.Context) (uint64, error) {
	var n uint64
	err := e.ch.Rows(ctx, "SELECT count() AS n FROM passive_dns", nil, func(r map[string]json.RawMessage) error {
		return json.Unmarshal(r["n"], &n)
	})
	if err != nil {
		return 0, fmt.Errorf("count passive_dns: %w", err)
	}
	return n, nil
}
