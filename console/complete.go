package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

type completion struct {
	Column string   `json:"column"`
	Values []string `json:"values"`
	Table  string   `json:"table"`
}

// complete suggests values of one column for the filter box: the most frequent over the view's
// range that start with prefix, read from the smallest table that holds the column.
func (s *Server) complete(ctx context.Context, v url.Values) (any, error) {
	d, ok := dimByName[v.Get("column")]
	if !ok || d.GroupOnly {
		return nil, badf("column=%q: not a filterable column", v.Get("column"))
	}
	from, to, err := timeRange(v, s.now())
	if err != nil {
		return nil, err
	}
	q := trafficQuery{Step: time.Minute, Dims: []*dimension{d}, Unit: "pps", Limit: 20}
	q.From, q.To = align(from, to, q.Step)
	c := choose(q)
	src := c.Source
	params := map[string]string{"prefix": v.Get("prefix")}
	tt := src.timeParams(params, q.From, q.To)
	where := fmt.Sprintf("%s >= {from:%s} AND %s < {to:%s}", src.Range, tt, src.Range, tt)
	for _, f := range q.families() {
		where += " AND " + src.render(familyCond[f])
	}
	prefix := v.Get("prefix")
	if len(prefix) > 256 {
		return nil, badf("prefix longer than 256 characters")
	}
	sql := fmt.Sprintf(`SELECT %s AS value, %s AS n FROM %s WHERE %s GROUP BY value HAVING startsWith(lower(value), lower({prefix:String}))
ORDER BY n DESC, value LIMIT 20 FORMAT JSONEachRow`, src.render(d.Expr), src.Packets, src.Table, where)
	out := completion{Column: d.Name, Values: []string{}, Table: src.Table}
	err = s.queryRows(ctx, sql, params, func(raw []byte) error {
		var r struct{ Value string }
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		if d.Kind == "proto" {
			r.Value = strings.ToLower(r.Value)
		}
		out.Values = append(out.Values, r.Value)
		return nil
	})
	return out, err
}
