package console

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/packetlake/packetlake/query"
)

type pipelineResponse struct {
	// LossBudget is query/reports/loss_budget.sql over the range: per minute and host, the
	// packets the kernel saw and the shares stored, sampled, only in flows, or unaccounted.
	LossBudget []map[string]any `json:"loss_budget"`
	// Freshness is, per host, the capture time of the newest stored packet and how old it is:
	// with a live collector, the pipeline's lag from the kernel to ClickHouse.
	Freshness []map[string]any `json:"freshness"`
	// DeadLetters counts the Kafka records the ingester could not decode, per minute, and lists
	// the latest.
	DeadLetters       []map[string]any `json:"dead_letters"`
	DeadLettersLatest []map[string]any `json:"dead_letters_latest"`
}

func (s *Server) pipeline(ctx context.Context, v url.Values) (any, error) {
	from, to, err := timeRange(v, s.now())
	if err != nil {
		return nil, err
	}
	rep, err := query.ReportByName("loss_budget")
	if err != nil {
		return nil, err
	}
	params := map[string]string{"since": from.Format(chTime), "until": to.Format(chTime), "limit": "100000",
		"from": from.Format(chTime), "to": to.Format(chTime)}
	out := pipelineResponse{LossBudget: []map[string]any{}, Freshness: []map[string]any{}, DeadLetters: []map[string]any{}, DeadLettersLatest: []map[string]any{}}
	collect := func(dst *[]map[string]any) func([]byte) error {
		return func(raw []byte) error {
			var m map[string]any
			d := json.NewDecoder(strings.NewReader(string(raw)))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				return err
			}
			*dst = append(*dst, m)
			return nil
		}
	}
	sql := strings.TrimRight(strings.TrimSpace(rep.SQL), ";") + "\nFORMAT JSONEachRow"
	if err := s.queryRows(ctx, sql, params, collect(&out.LossBudget)); err != nil {
		return nil, err
	}
	if err := s.queryRows(ctx, `SELECT host, toString(max(ts)) AS last_packet, dateDiff('millisecond', max(ts), now64(3)) / 1000 AS age_s
FROM packets WHERE ts >= {from:DateTime64(9)} AND ts < {to:DateTime64(9)} GROUP BY host ORDER BY host FORMAT JSONEachRow`, params, collect(&out.Freshness)); err != nil {
		return nil, err
	}
	if err := s.queryRows(ctx, `SELECT toString(toStartOfMinute(ts)) AS minute, count() AS n FROM dead_letters
WHERE ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)} GROUP BY minute ORDER BY minute FORMAT JSONEachRow`, params, collect(&out.DeadLetters)); err != nil {
		return nil, err
	}
	if err := s.queryRows(ctx, `SELECT ts, topic, partition, offset, error FROM dead_letters
WHERE ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)} ORDER BY ts DESC LIMIT 20 FORMAT JSONEachRow`, params, collect(&out.DeadLettersLatest)); err != nil {
		return nil, err
	}
	return out, nil
}
