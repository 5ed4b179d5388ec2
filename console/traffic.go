package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// trafficResponse is the traffic view's data: per bucket and group, the rate; per group, the
// totals (the table and the Sankey diagram are drawn from Rows).
type trafficResponse struct {
	Table    string            `json:"table"`    // the table that answered
	Rejected []string          `json:"rejected"` // the cheaper tables, and why each could not
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Step     int64             `json:"step"` // seconds
	Unit     string            `json:"unit"`
	Dims     []string          `json:"dims"`
	Times    []int64           `json:"times"` // Unix seconds of each bucket's start
	Series   []series          `json:"series"`
	Rows     []row             `json:"rows"`
	Previous *series           `json:"previous,omitempty"` // the total of the period before, same buckets
	SQL      string            `json:"sql"`
	Params   map[string]string `json:"params"`
}

type series struct {
	Key    []string  `json:"key"`
	Values []float64 `json:"values"` // per second: packets/s or bits/s
}

type row struct {
	Key   []string `json:"key"`
	Total uint64   `json:"total"` // packets or bytes over the range
	Avg   float64  `json:"avg"`   // per second over the range
	Max   float64  `json:"max"`   // the busiest bucket, per second
	Share float64  `json:"share"` // of the total, 0..1
}

// parseTraffic reads the traffic view's URL parameters.
func parseTraffic(v url.Values, now time.Time) (trafficQuery, error) {
	var q trafficQuery
	from, to, err := timeRange(v, now)
	if err != nil {
		return q, err
	}
	q.Step = pickStep(to.Sub(from))
	if s := v.Get("step"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second || d%time.Second != 0 {
			return q, badf("step=%q: want a whole number of seconds such as 60s or 5m", s)
		}
		if to.Sub(from)/d > 5000 {
			return q, badf("step=%s gives more than 5000 points over this range", s)
		}
		q.Step = d
	}
	q.From, q.To = align(from, to, q.Step)
	if d := v.Get("dims"); d != "" {
		for _, name := range strings.Split(d, ",") {
			dim, ok := dimByName[name]
			if !ok {
				return q, badf("dims: unknown dimension %q%s", name, suggestDimension(name))
			}
			if slices.Contains(q.Dims, dim) {
				return q, badf("dims: %s twice", name)
			}
			q.Dims = append(q.Dims, dim)
		}
	}
	if len(q.Dims) > 3 {
		return q, badf("dims: at most 3 dimensions")
	}
	q.Unit = v.Get("unit")
	if q.Unit == "" {
		q.Unit = "pps"
	}
	if q.Unit != "pps" && q.Unit != "bps" {
		return q, badf("unit=%q: want pps or bps", q.Unit)
	}
	q.Limit = 10
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 50 {
			return q, badf("limit=%q: want 1 to 50", l)
		}
		q.Limit = n
	}
	if q.Filter, err = compileFilter(v.Get("filter")); err != nil {
		return q, &BadRequest{err.Error()}
	}
	return q, nil
}

// trafficSQL builds the statement: per bucket, the top Limit groups over the whole range and
// everything else as "Other".
func trafficSQL(q trafficQuery, s source) (string, map[string]string) {
	params := map[string]string{}
	for k, v := range q.Filter.Params {
		params[k] = v
	}
	params["step"] = strconv.FormatInt(int64(q.Step/time.Second), 10)
	params["limit"] = strconv.Itoa(q.Limit)
	tt := s.timeParams(params, q.From, q.To)
	where := []string{fmt.Sprintf("%s >= {from:%s} AND %s < {to:%s}", s.Range, tt, s.Range, tt)}
	if q.Filter.SQL != "" {
		where = append(where, s.render(q.Filter.SQL))
	}
	for _, f := range q.families() {
		where = append(where, s.render(familyCond[f]))
	}
	key := "['Total']"
	if len(q.Dims) > 0 {
		var ks []string
		for _, d := range q.Dims {
			ks = append(ks, s.render(d.Expr))
		}
		key = "[" + strings.Join(ks, ", ") + "]"
	}
	m := s.Packets
	if q.Unit == "bps" {
		m = s.Bytes
	}
	from := s.Table
	cond := strings.Join(where, "\n  AND ")
	sql := fmt.Sprintf(`SELECT b, if(k IN (
    SELECT k FROM (SELECT %[1]s AS k, %[2]s AS v FROM %[3]s WHERE %[4]s GROUP BY k ORDER BY v DESC, k LIMIT {limit:UInt32})
  ), k, ['Other']) AS key, sum(v) AS v
FROM (
  SELECT intDiv(toUInt32(%[5]s), {step:UInt32}) * {step:UInt32} AS b, %[1]s AS k, %[2]s AS v
  FROM %[3]s
  WHERE %[4]s
  GROUP BY b, k
)
GROUP BY b, key
ORDER BY b, key
FORMAT JSONEachRow`, key, m, from, cond, s.Time)
	return sql, params
}

// traffic answers the traffic view.
func (srv *Server) traffic(ctx context.Context, v url.Values) (*trafficResponse, error) {
	q, err := parseTraffic(v, srv.now())
	if err != nil {
		return nil, err
	}
	c := choose(q)
	if v.Get("raw") == "1" {
		c = choice{Source: rawSource, Rejected: []string{"raw=1: the packets table was asked for"}}
	}
	sql, params := trafficSQL(q, c.Source)
	type line struct {
		B   int64    `json:"b"`
		Key []string `json:"key"`
		V   uint64   `json:"v"`
	}
	var lines []line
	if err := srv.queryRows(ctx, sql, params, func(raw []byte) error {
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			return err
		}
		lines = append(lines, l)
		return nil
	}); err != nil {
		return nil, err
	}
	resp := &trafficResponse{Table: c.Source.Table, Rejected: c.Rejected, From: q.From, To: q.To, Step: int64(q.Step / time.Second),
		Unit: q.Unit, SQL: sql, Params: params, Series: []series{}, Rows: []row{}, Dims: []string{}}
	for _, d := range q.Dims {
		resp.Dims = append(resp.Dims, d.Name)
	}
	n := int(q.To.Sub(q.From) / q.Step)
	for i := range n {
		resp.Times = append(resp.Times, q.From.Unix()+int64(i)*resp.Step)
	}
	scale := 1.0 / q.Step.Seconds()
	if q.Unit == "bps" {
		scale *= 8
	}
	idx := map[string]int{}
	totals := map[string]uint64{}
	var grand uint64
	for _, l := range lines {
		k := strings.Join(l.Key, "\x1f")
		i, ok := idx[k]
		if !ok {
			i = len(resp.Series)
			idx[k] = i
			resp.Series = append(resp.Series, series{Key: l.Key, Values: make([]float64, n)})
		}
		if b := int((l.B - q.From.Unix()) / resp.Step); b >= 0 && b < n {
			resp.Series[i].Values[b] = float64(l.V) * scale
		}
		totals[k] += l.V
		grand += l.V
	}
	secs := q.To.Sub(q.From).Seconds()
	for _, s := range resp.Series {
		k := strings.Join(s.Key, "\x1f")
		r := row{Key: s.Key, Total: totals[k], Avg: float64(totals[k]) / secs}
		if q.Unit == "bps" {
			r.Avg *= 8
		}
		r.Max = slices.Max(s.Values)
		if grand > 0 {
			r.Share = float64(totals[k]) / float64(grand)
		}
		resp.Rows = append(resp.Rows, r)
	}
	// Biggest first, Other last: the order of the legend, the stack and the table.
	order := func(a, b row) int {
		if ao, bo := isOther(a.Key), isOther(b.Key); ao != bo {
			if ao {
				return 1
			}
			return -1
		}
		if a.Total != b.Total {
			if a.Total > b.Total {
				return -1
			}
			return 1
		}
		return slices.Compare(a.Key, b.Key)
	}
	slices.SortFunc(resp.Rows, order)
	pos := map[string]int{}
	for i, r := range resp.Rows {
		pos[strings.Join(r.Key, "\x1f")] = i
	}
	slices.SortFunc(resp.Series, func(a, b series) int {
		return pos[strings.Join(a.Key, "\x1f")] - pos[strings.Join(b.Key, "\x1f")]
	})
	if v.Get("previous") == "1" {
		pq := q
		pq.Dims = nil
		d := q.To.Sub(q.From)
		pq.From, pq.To = q.From.Add(-d), q.To.Add(-d)
		pc := choose(pq)
		psql, pparams := trafficSQL(pq, pc.Source)
		prev := &series{Key: []string{"Previous period"}, Values: make([]float64, n)}
		if err := srv.queryRows(ctx, psql, pparams, func(raw []byte) error {
			var l line
			if err := json.Unmarshal(raw, &l); err != nil {
				return err
			}
			if b := int((l.B - pq.From.Unix()) / resp.Step); b >= 0 && b < n {
				prev.Values[b] = float64(l.V) * scale
			}
			return nil
		}); err != nil {
			return nil, err
		}
		resp.Previous = prev
	}
	return resp, nil
}

func isOther(k []string) bool { return len(k) == 1 && k[0] == "Other" }
