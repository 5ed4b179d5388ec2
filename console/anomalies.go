package console

import (
	"context"
	"encoding/json"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type anomaliesResponse struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Anomalies []anomaly `json:"anomalies"`
}

type anomaly struct {
	TS              string          `json:"ts"`
	Kind            string          `json:"kind"`
	Subject         string          `json:"subject"`
	WindowStart     string          `json:"window_start"`
	WindowEnd       string          `json:"window_end"`
	Score           float64         `json:"score"`
	Evidence        json.RawMessage `json:"evidence"`
	DetectorVersion string          `json:"detector_version"`
	DetectorHost    string          `json:"detector_host"`
	ID              string          `json:"id"`
	// Filter and the range are where the traffic and packets views open for this anomaly.
	Filter string `json:"filter"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// anomalies lists the anomalies reported in the range, newest first.
func (s *Server) anomalies(ctx context.Context, v url.Values) (any, error) {
	from, to, err := timeRange(v, s.now())
	if err != nil {
		return nil, err
	}
	params := map[string]string{"from": from.Format(chTime), "to": to.Format(chTime)}
	where := "ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}"
	if k := v.Get("kind"); k != "" {
		params["kind"] = k
		where += " AND kind = {kind:String}"
	}
	sql := `SELECT ts, kind, subject, window_start, window_end, score, evidence, detector_version, detector_host, id
FROM anomalies WHERE ` + where + ` ORDER BY ts DESC LIMIT 1000 FORMAT JSONEachRow`
	out := anomaliesResponse{From: from, To: to, Anomalies: []anomaly{}}
	err = s.queryRows(ctx, sql, params, func(raw []byte) error {
		var a struct {
			anomaly
			Evidence string `json:"evidence"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			return err
		}
		a.anomaly.Evidence = json.RawMessage("{}")
		if json.Valid([]byte(a.Evidence)) {
			a.anomaly.Evidence = json.RawMessage(a.Evidence)
		}
		a.anomaly.Filter = anomalyFilter(a.Kind, a.Subject)
		a.anomaly.From, a.anomaly.To = anomalyWindow(a.WindowStart, a.WindowEnd)
		out.Anomalies = append(out.Anomalies, a.anomaly)
		return nil
	})
	return out, err
}

// anomalyFilter is the filter that shows an anomaly's packets: scans and sweeps and DNS
// tunnels by their source, floods and spikes by their target (detector/sql names the subject).
func anomalyFilter(kind, subject string) string {
	switch kind {
	case "port_scan", "host_sweep", "dns_tunnel":
		addr, _, _ := strings.Cut(subject, " ")
		if _, err := netip.ParseAddr(addr); err == nil {
			return "src_addr = " + addr
		}
	case "syn_flood":
		if ap, err := netip.ParseAddrPort(subject); err == nil {
			return "dst_addr = " + ap.Addr().String() + " AND dst_port = " + strconv.Itoa(int(ap.Port())) + " AND ip_proto = tcp"
		}
	case "icmp_flood":
		if _, err := netip.ParseAddr(subject); err == nil {
			return "dst_addr = " + subject + " AND ip_proto IN (icmp, icmpv6)"
		}
	case "udp_flood":
		if _, err := netip.ParseAddr(subject); err == nil {
			return "dst_addr = " + subject + " AND ip_proto = udp"
		}
	}
	if _, err := netip.ParseAddr(subject); err == nil {
		return "dst_addr = " + subject
	}
	return ""
}

// anomalyWindow is the anomaly's packet window widened by a minute each side (whole minutes).
func anomalyWindow(start, end string) (string, string) {
	const f = "2006-01-02 15:04:05.000"
	s, err1 := time.Parse(f, start)
	e, err2 := time.Parse(f, end)
	if err1 != nil || err2 != nil {
		return "", ""
	}
	return s.Add(-time.Minute).Truncate(time.Minute).UTC().Format(time.RFC3339),
		e.Add(2 * time.Minute).Truncate(time.Minute).UTC().Format(time.RFC3339)
}
