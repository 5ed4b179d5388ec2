package console

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/packetlake/packetlake/query"
)

// tcpHealthResponse is the TCP health view's data: the two reports of query/TCP_HEALTH.md over
// the range, per service and the worst flow directions.
type tcpHealthResponse struct {
	Services []map[string]any `json:"services"`
	Flows    []map[string]any `json:"flows"`
}

// tcpHealth runs tcp_health and tcp_health_flows (their SQL, their rules: each recorded
// direction analysed alone, sampled flows said to be so) over the range.
func (s *Server) tcpHealth(ctx context.Context, v url.Values) (any, error) {
	from, to, err := timeRange(v, s.now())
	if err != nil {
		return nil, err
	}
	out := tcpHealthResponse{Services: []map[string]any{}, Flows: []map[string]any{}}
	for _, r := range []struct {
		report, limit string
		dst           *[]map[string]any
	}{{"tcp_health", "200", &out.Services}, {"tcp_health_flows", "50", &out.Flows}} {
		rep, err := query.ReportByName(r.report)
		if err != nil {
			return nil, err
		}
		params := map[string]string{"since": from.Format(chTime), "until": to.Format(chTime), "limit": r.limit}
		sql := strings.TrimRight(strings.TrimSpace(rep.SQL), ";") + "\nFORMAT JSONEachRow"
		if err := s.queryRows(ctx, sql, params, func(raw []byte) error {
			var m map[string]any
			d := json.NewDecoder(strings.NewReader(string(raw)))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				return err
			}
			*r.dst = append(*r.dst, m)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
