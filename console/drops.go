package console

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// dropColumns are the filter columns the drops table holds (it counts per reason and 5-tuple).
var dropColumns = []string{"host", "iface", "ip_version", "ip_proto", "src_addr", "dst_addr", "src_port", "dst_port"}

// dropsResponse is the Drops view's data, from the drops table (migration 0750): rows are
// deltas, so every count is a sum over the range.
type dropsResponse struct {
	From int64 `json:"from"` // the range widened to whole steps, Unix ms (the chart's axis)
	To   int64 `json:"to"`
	Step int64 `json:"step"` // seconds per bucket
	// Series: per bucket (t, Unix ms), reason and observed (1: packetlake saw the packet on the
	// watched interface; 0: dropped elsewhere on the host), the packets dropped.
	Series []map[string]any `json:"series"`
	// Reasons: per reason and observed, packets and bytes over the range, most first.
	Reasons []map[string]any `json:"reasons"`
	// Flows: the flows with the most dropped packets that packetlake saw, with their reason.
	Flows []map[string]any `json:"flows"`
}

// drops answers "which packets did this host's kernel drop after packetlake saw them, and why"
// over the range, narrowed by the filter (only the columns the drops table has).
func (s *Server) drops(ctx context.Context, v url.Values) (any, error) {
	from, to, err := timeRange(v, s.now())
	if err != nil {
		return nil, err
	}
	where, params, err := tableFilter(v.Get("filter"), dropColumns, "the drops table has no %s (kernel drops are counted per reason, interface and 5-tuple)")
	if err != nil {
		return nil, err
	}
	step := pickStep(to.Sub(from))
	af, at := align(from, to, step)
	params["from"], params["to"] = from.Format(chTime), to.Format(chTime)
	params["step"] = strconv.FormatInt(int64(step/time.Second), 10)
	out := dropsResponse{From: af.UnixMilli(), To: at.UnixMilli(), Step: int64(step / time.Second),
		Series: []map[string]any{}, Reasons: []map[string]any{}, Flows: []map[string]any{}}
	base := "FROM drops WHERE ts >= {from:DateTime64(9)} AND ts < {to:DateTime64(9)}" + where
	for _, q := range []struct {
		sql string
		dst *[]map[string]any
	}{
		{`SELECT toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({step:UInt32}))) * 1000 AS t, reason, observed, sum(packets) AS packets
` + base + ` GROUP BY t, reason, observed ORDER BY t, reason, observed`, &out.Series},
		{`SELECT reason, observed, sum(packets) AS packets, sum(bytes) AS bytes
` + base + ` GROUP BY reason, observed ORDER BY packets DESC, reason, observed`, &out.Reasons},
		{`SELECT host, iface, reason, ip_version, ip_proto, src_addr, dst_addr, src_port, dst_port, sum(packets) AS packets, sum(bytes) AS bytes
` + base + ` AND observed = 1 GROUP BY host, iface, reason, ip_version, ip_proto, src_addr, dst_addr, src_port, dst_port
ORDER BY packets DESC, bytes DESC, reason LIMIT 50`, &out.Flows},
	} {
		if err := s.queryRows(ctx, q.sql+"\nFORMAT JSONEachRow", params, jsonRows(q.dst)); err != nil {
			return nil, err
		}
	}
	for _, m := range out.Flows {
		nameFlow(m)
	}
	return out, nil
}

// receivers answers "which local processes receive the traffic": the flows' receiving process
// (collect --receivers, migration 0800) by bytes, narrowed by the filter.
func (s *Server) receivers(ctx context.Context, v url.Values) (any, error) {
	from, to, err := timeRange(v, s.now())
	if err != nil {
		return nil, err
	}
	where, params, err := tableFilter(v.Get("filter"), flowColumns, "the flow counters have no %s (they are kept per 5-tuple, VLAN and interface)")
	if err != nil {
		return nil, err
	}
	params["from"], params["to"] = from.Format(chTime), to.Format(chTime)
	// recv_pid 0 is "no local reader seen" (forwarded, refused, not read yet, --receivers off).
	sql := `SELECT host, recv_pid AS pid, if(recv_pid = 0, '(none)', recv_comm) AS comm, recv_container_id AS container,
  recv_pod_uid AS pod, recv_cgroup AS cgroup, sum(packets) AS packets, sum(bytes) AS bytes,
  uniqExact(src_addr, src_port, dst_addr, dst_port, ip_proto) AS flows
FROM flows WHERE ts >= {from:DateTime64(9)} AND ts < {to:DateTime64(9)}` + where + `
GROUP BY host, recv_pid, recv_comm, recv_container_id, recv_pod_uid, recv_cgroup
ORDER BY bytes DESC, packets DESC, host, pid LIMIT 100 FORMAT JSONEachRow`
	out := struct {
		Receivers []map[string]any `json:"receivers"`
	}{[]map[string]any{}}
	if err := s.queryRows(ctx, sql, params, jsonRows(&out.Receivers)); err != nil {
		return nil, err
	}
	return out, nil
}

// tableFilter compiles the filter for a table that holds only the columns given; a column it
// lacks is a 400 naming it (msg has one %s).
func tableFilter(filter string, columns []string, msg string) (string, map[string]string, error) {
	f, err := compileFilter(filter)
	if err != nil {
		return "", nil, &BadRequest{err.Error()}
	}
	for _, c := range f.Columns {
		if !slices.Contains(columns, c) {
			return "", nil, badf(msg, c)
		}
	}
	params := map[string]string{}
	for k, v := range f.Params {
		params[k] = v
	}
	if f.SQL == "" {
		return "", params, nil
	}
	return " AND " + rawSource.render(f.SQL), params, nil
}

// jsonRows appends each JSONEachRow row to dst, numbers kept exact.
func jsonRows(dst *[]map[string]any) func([]byte) error {
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

// nameFlow adds the addresses and protocol as the other views print them.
func nameFlow(m map[string]any) {
	src, _ := m["src_addr"].(string)
	dst, _ := m["dst_addr"].(string)
	m["src"], m["dst"] = displayAddr(src), displayAddr(dst)
	p, _ := m["ip_proto"].(json.Number)
	ver, _ := m["ip_version"].(json.Number)
	pu, _ := strconv.ParseUint(p.String(), 10, 64)
	vu, _ := strconv.ParseUint(ver.String(), 10, 64)
	m["proto"] = ""
	if vu != 0 { // MAP_FULL rows: the kernel's table had no room, the flow is unknown
		m["proto"] = protoName(pu, vu)
	}
}
