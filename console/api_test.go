package console

import (
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Longer than most files on purpose: one test per view of the API, each worked out by hand from
// handPackets (main_test.go), side by side.

var twoHours = url.Values{"from": {"2026-12-06T10:00:00Z"}, "to": {"2026-12-06T12:00:00Z"}}

func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	for i := 0; i < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

func TestTrafficHandChecked(t *testing.T) {
	f := newFixture(t, handPackets)
	r := f.traffic(t, with(twoHours, "dims", "dst_port"))
	if r.Table != "traffic_1m" || r.Step != 60 {
		t.Errorf("table %s step %d, want traffic_1m and 60 (rejected: %v)", r.Table, r.Step, r.Rejected)
	}
	// Packets scaled by sample_rate: 443 = 1+1+10, 53 = one packet at rate 4, 80 = one at 2.
	eqTotals(t, "packets by dst_port", totals(r), map[string]uint64{"443": 12, "53": 4, "80": 2, "0": 1})
	if len(r.Times) != 120 || r.Times[0] != base.Unix() {
		t.Errorf("%d buckets from %d, want 120 from %d", len(r.Times), r.Times[0], base.Unix())
	}
	for _, s := range r.Series {
		if s.Key[0] == "443" {
			if math.Abs(s.Values[0]-2.0/60) > 1e-9 || math.Abs(s.Values[70]-10.0/60) > 1e-9 {
				t.Errorf("443 at 10:00 %v/s and 11:10 %v/s, want 2/60 and 10/60", s.Values[0], s.Values[70])
			}
		}
	}
	if r.Rows[0].Key[0] != "443" || math.Abs(r.Rows[0].Share-12.0/19) > 1e-9 {
		t.Errorf("first row %+v, want 443 with 12/19 of the packets", r.Rows[0])
	}
	// Bytes: pkt_len × sample_rate; bits/s over the 2 h range.
	b := f.traffic(t, with(twoHours, "dims", "dst_port", "unit", "bps"))
	eqTotals(t, "bytes by dst_port", totals(b), map[string]uint64{"443": 60 + 1500 + 1000, "53": 320, "80": 1000, "0": 98})
	if got, want := b.Rows[0].Avg, 2560.0*8/7200; math.Abs(got-want) > 1e-9 {
		t.Errorf("443 average %v bit/s, want %v", got, want)
	}
	// Top 2 and Other; three dimensions; no dimension.
	o := f.traffic(t, with(twoHours, "dims", "dst_port", "limit", "2"))
	eqTotals(t, "top 2", totals(o), map[string]uint64{"443": 12, "53": 4, "Other": 3})
	if k := o.Rows[len(o.Rows)-1].Key; !isOther(k) {
		t.Errorf("Other is not last: %v", k)
	}
	eqTotals(t, "host, iface, ip_proto", totals(f.traffic(t, with(twoHours, "dims", "host,iface,ip_proto"))),
		map[string]uint64{"h1|eth0|TCP": 2, "h1|eth0|UDP": 4, "h1|eth1|TCP": 2, "h2|eth0|TCP": 10, "h1|eth0|ICMP": 1})
	eqTotals(t, "total", totals(f.traffic(t, twoHours)), map[string]uint64{"Total": 19})
	eqTotals(t, "src_prefix", totals(f.traffic(t, with(twoHours, "dims", "src_prefix"))),
		map[string]uint64{"10.0.0.0/24": 16, "10.0.1.0/24": 1, "2001:db8::/64": 2})
	// The previous period (08:00 to 10:00) had nothing.
	p := f.traffic(t, with(twoHours, "previous", "1"))
	if p.Previous == nil || len(p.Previous.Values) != 120 || p.Previous.Values[0] != 0 {
		t.Errorf("previous period %+v", p.Previous)
	}
}

// Every rollup the chooser picks answers exactly what the raw packets answer.
func TestRollupEqualsRaw(t *testing.T) {
	f := newFixture(t, handPackets)
	week := url.Values{"from": {"2026-12-01T00:00:00Z"}, "to": {"2026-12-08T00:00:00Z"}}
	cases := []struct {
		v     url.Values
		table string
	}{
		{with(twoHours, "dims", "dst_port"), "traffic_1m"},
		{with(twoHours, "dims", "ip_proto,host", "filter", "vlan_id = 0 AND dst_port < 1000", "unit", "bps"), "traffic_1m"},
		{with(twoHours, "dims", "dst_port", "filter", "src_port = 40000"), "flows_1m"},
		{with(week, "dims", "dst_port,iface"), "traffic_1h"},
		{with(twoHours, "dims", "src_addr"), "talkers_1m"},
		{with(twoHours, "dims", "src_addr", "unit", "bps"), "talkers_1m"},
		{with(twoHours, "dims", "dst_prefix,ip_proto", "filter", "src_port >= 1234 AND host = h1"), "flows_1m"},
		{with(twoHours, "dims", "dns_qname"), "dns_names_1m"},
		{with(twoHours, "dims", "tls_sni"), "tls_sni_1m"},
		{with(twoHours, "dims", "http_host,http_method"), "http_hosts_1m"},
		{with(week, "dims", "dst_addr"), "flows_1h"},
		{with(week, "dims", "iface", "filter", "src_addr << 10.0.0.0/8"), "talkers_1h"},
		{with(week, "dims", "dns_qname,host"), "dns_names_1h"},
		{with(twoHours, "dims", "ttl"), "packets"},
		{with(twoHours, "dims", "tls_sni", "unit", "bps"), "packets"},
	}
	for _, c := range cases {
		got := f.traffic(t, c.v)
		raw := f.traffic(t, with(c.v, "raw", "1"))
		if got.Table != c.table {
			t.Errorf("%v: table %s, want %s (rejected %v)", c.v, got.Table, c.table, got.Rejected)
		}
		if raw.Table != "packets" {
			t.Errorf("raw=1 read %s", raw.Table)
		}
		eqTotals(t, c.v.Encode(), totals(got), totals(raw))
		for i := range got.Series {
			for j := range got.Series[i].Values {
				if got.Series[i].Values[j] != raw.Series[i].Values[j] {
					t.Fatalf("%v: series %v bucket %d: %v from %s, %v from packets", c.v, got.Series[i].Key, j, got.Series[i].Values[j], got.Table, raw.Series[i].Values[j])
				}
			}
		}
	}
}

func TestFilterOperators(t *testing.T) {
	f := newFixture(t, handPackets)
	cases := map[string]uint64{
		"":                                      19,
		"dst_port = 443":                        12,
		"dst_port != 443":                       7,
		"dst_port < 80":                         5,
		"dst_port <= 80":                        7,
		"dst_port > 80":                         12,
		"dst_port >= 80":                        14,
		"dst_port IN (53, 80)":                  6,
		"dst_port not in (53,80)":               13,
		"src_addr = 10.0.0.1":                   12,
		"src_addr = 2001:db8::1":                2,
		"src_addr << 10.0.0.0/24":               16,
		"src_addr !<< 10.0.0.0/24":              3,
		"src_addr << 2001:db8::/32":             2,
		"dst_addr << 10.0.0.2":                  17,
		"src_addr IN (10.0.0.3, 2001:db8::1)":   6,
		"ip_proto = udp":                        4,
		"ip_proto = ICMP":                       1,
		"ip_proto IN (tcp, 17)":                 18,
		"tls_sni LIKE '%.com'":                  1,
		"tls_sni NOT LIKE '%.com'":              18,
		"host = 'h2' OR dst_port = 53":          14,
		"NOT (host = h1)":                       10,
		"NOT host = h1 OR iface = eth1":         12,
		"iface = eth1 AND ttl = 64":             2,
		`dns_qname = "a.example"`:               4,
		"http_method = GET AND http_host = web": 2,
		"vlan_id = 0 AND ip_version = 4":        17,
		"tcp_flags = 2":                         1,
		"icmp_type = 8 and ip_proto = icmp":     1,
		// A quote inside a value stays a value.
		`host = 'h1\' OR 1=1 --'`:   0,
		`host = "x\" OR \"1\"=\"1"`: 0,
	}
	for filter, want := range cases {
		for _, raw := range []string{"0", "1"} {
			r := f.traffic(t, with(twoHours, "filter", filter, "raw", raw))
			var got uint64
			for _, row := range r.Rows {
				got += row.Total
			}
			if got != want {
				t.Errorf("filter %q (%s): %d packets, want %d", filter, r.Table, got, want)
			}
		}
	}
}

func TestBadInputIs4xx(t *testing.T) {
	f := newFixture(t, handPackets)
	cases := []struct {
		path string
		v    url.Values
		want string
	}{
		{"/api/v1/traffic", with(twoHours, "filter", "dst_port = "), "expected a value for dst_port"},
		{"/api/v1/traffic", with(twoHours, "filter", "dts_port = 1"), "did you mean dst_port"},
		{"/api/v1/traffic", with(twoHours, "filter", "dst_port = 70000"), "dst_port is at most 65535"},
		{"/api/v1/traffic", with(twoHours, "filter", "dst_port = http"), "not a number"},
		{"/api/v1/traffic", with(twoHours, "filter", "src_addr = 10.0.0.0/8"), "use src_addr << 10.0.0.0/8"},
		{"/api/v1/traffic", with(twoHours, "filter", "src_addr = example"), "not an IP address"},
		{"/api/v1/traffic", with(twoHours, "filter", "src_addr LIKE 'x'"), "does not take LIKE"},
		{"/api/v1/traffic", with(twoHours, "filter", "host = 'x"), "unterminated string"},
		{"/api/v1/traffic", with(twoHours, "filter", "dst_port = 1; DROP TABLE packets"), `unexpected ';'`},
		{"/api/v1/traffic", with(twoHours, "filter", "(dst_port = 1"), "expected )"},
		{"/api/v1/traffic", with(twoHours, "filter", "dst_port = 1 dst_port = 2"), "expected AND, OR or the end"},
		{"/api/v1/traffic", with(twoHours, "filter", "src_prefix = 1"), "unknown column"},
		{"/api/v1/traffic", with(twoHours, "filter", strings.Repeat("x", 5000)), "longer than 4096"},
		{"/api/v1/traffic", url.Values{"from": {"now"}, "to": {"now-1h"}}, "the range is empty"},
		{"/api/v1/traffic", url.Values{"from": {"yesterday"}}, "want now, now-6h"},
		{"/api/v1/traffic", url.Values{"from": {"now-1000d"}}, "longer than 400 days"},
		{"/api/v1/traffic", with(twoHours, "dims", "foo"), "unknown dimension"},
		{"/api/v1/traffic", with(twoHours, "dims", "host,iface,src_addr,dst_addr"), "at most 3"},
		{"/api/v1/traffic", with(twoHours, "dims", "host,host"), "host twice"},
		{"/api/v1/traffic", with(twoHours, "unit", "furlongs"), "want pps or bps"},
		{"/api/v1/traffic", with(twoHours, "limit", "0"), "want 1 to 50"},
		{"/api/v1/traffic", with(twoHours, "step", "1s"), "more than 5000 points"},
		{"/api/v1/packets", with(twoHours, "limit", "100000"), "want 1 to 10000"},
		{"/api/v1/packets", with(twoHours, "format", "xml"), "want csv or json"},
		{"/api/v1/packets", with(twoHours, "filter", "ttl >"), "expected a value"},
		{"/api/v1/flows", with(twoHours, "filter", "nope = 1"), "unknown column"},
		{"/api/v1/complete", url.Values{"column": {"src_prefix"}}, "not a filterable column"},
		{"/api/v1/anomalies", url.Values{"to": {"tomorrow"}}, "to=\"tomorrow\""},
		{"/api/v1/pipeline", url.Values{"from": {"now+1h"}}, "from=\"now+1h\""},
	}
	for _, c := range cases {
		code, body := f.get(t, c.path, c.v, nil)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s?%s: %d %s, want 400 with %q", c.path, c.v.Encode(), code, strings.TrimSpace(body), c.want)
		}
	}
}

func TestLimitsAre422(t *testing.T) {
	f := newFixture(t, handPackets)
	srv := New(Config{Querier: f.q, Limits: Limits{MaxExecutionTime: 10 * time.Second, MaxResultRows: 2, MaxMemoryUsage: 1 << 30}, Now: f.srv.cfg.Now})
	small := &fixture{db: f.db, q: f.q, srv: srv}
	hs := newTestServer(t, srv)
	small.url = hs
	code, body := small.get(t, "/api/v1/traffic", with(twoHours, "dims", "dst_port"), nil)
	if code != 422 || !strings.Contains(body, "max_result_rows") {
		t.Errorf("over max_result_rows: %d %s, want 422 naming max_result_rows", code, body)
	}
}

func TestPacketsView(t *testing.T) {
	f := newFixture(t, handPackets)
	var r packetsResponse
	if code, body := f.get(t, "/api/v1/packets", with(twoHours, "filter", "dst_port IN (53, 80) OR ip_proto = icmp"), &r); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if len(r.Packets) != 3 || r.Truncated {
		t.Fatalf("%d packets (truncated %v), want 3", len(r.Packets), r.Truncated)
	}
	wantInfo := []string{"type 8 code 0", "53000 → 53 DNS query 0xbeef a.example (type 1)", "1234 → 80 [PSH,ACK] HTTP GET web/index"}
	wantSrc := []string{"10.0.1.5", "10.0.0.3", "2001:db8::1"}
	for i, p := range r.Packets {
		if p["info"] != wantInfo[i] || p["src"] != wantSrc[i] {
			t.Errorf("packet %d: src %v info %q, want %s %q", i, p["src"], p["info"], wantSrc[i], wantInfo[i])
		}
	}
	if len(r.Columns) < 40 || r.Packets[0]["sample_rate"] == nil || r.Packets[1]["dns_id"].(any) == nil {
		t.Errorf("details lack columns: %v", r.Columns)
	}
	_, csv := f.get(t, "/api/v1/packets", with(twoHours, "filter", "dst_port = 53", "format", "csv"), nil)
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "info,ts,host,") || !strings.Contains(lines[1], "a.example") {
		t.Errorf("csv export:\n%s", csv)
	}
	var lim packetsResponse
	f.get(t, "/api/v1/packets", with(twoHours, "limit", "2"), &lim)
	if len(lim.Packets) != 2 || !lim.Truncated {
		t.Errorf("limit 2: %d packets, truncated %v", len(lim.Packets), lim.Truncated)
	}

	// The kernel's exact counters of the same conversation, summed over two exports.
	f.insert(t, "flows", []pkt{
		{"ts": at(30 * time.Second), "host": "h1", "iface": "eth0", "ip_version": 4, "ip_proto": 6, "src_addr": "::ffff:10.0.0.1", "dst_addr": "::ffff:10.0.0.2", "src_port": 40000, "dst_port": 443, "packets": 2, "bytes": 1560, "syn": 1, "ack": 1, "first_seen": at(5 * time.Second), "last_seen": at(10 * time.Second)},
		{"ts": at(35 * time.Second), "host": "h1", "iface": "eth0", "ip_version": 4, "ip_proto": 6, "src_addr": "::ffff:10.0.0.1", "dst_addr": "::ffff:10.0.0.2", "src_port": 40000, "dst_port": 443, "packets": 3, "bytes": 300, "ack": 3, "first_seen": at(5 * time.Second), "last_seen": at(33 * time.Second)},
	})
	var fl flowsResponse
	f.get(t, "/api/v1/flows", with(twoHours, "filter", "src_addr = 10.0.0.1 AND dst_port = 443"), &fl)
	if !fl.Available || len(fl.Flows) != 1 || fl.Flows[0]["packets"].(float64) != 5 || fl.Flows[0]["bytes"].(float64) != 1860 || fl.Flows[0]["exports"].(float64) != 2 {
		t.Errorf("flows: %+v", fl)
	}
	f.get(t, "/api/v1/flows", with(twoHours, "filter", "tls_sni = example.com"), &fl)
	if fl.Available || !strings.Contains(fl.Reason, "no tls_sni") {
		t.Errorf("flows by SNI: %+v, want unavailable", fl)
	}
}

func TestAnomaliesView(t *testing.T) {
	f := newFixture(t, handPackets)
	f.insert(t, "anomalies", []pkt{
		{"ts": "2026-12-06 10:00:12.000", "kind": "port_scan", "subject": "10.0.0.1", "window_start": "2026-12-06 10:00:05.000", "window_end": "2026-12-06 10:00:10.000", "score": 120, "evidence": `{"ports":120}`, "detector_version": "t", "detector_host": "d", "id": "00000000-0000-0000-0000-000000000001"},
		{"ts": "2026-12-06 10:02:05.000", "kind": "syn_flood", "subject": "[2001:db8::2]:80", "window_start": "2026-12-06 10:02:00.000", "window_end": "2026-12-06 10:02:00.000", "score": 3, "evidence": "{}", "detector_version": "t", "detector_host": "d", "id": "00000000-0000-0000-0000-000000000002"},
	})
	var ar anomaliesResponse
	f.get(t, "/api/v1/anomalies", twoHours, &ar)
	as := ar.Anomalies
	if len(as) != 2 || as[1].Kind != "port_scan" || as[1].Filter != "src_addr = 10.0.0.1" || as[1].From != "2026-12-06T09:59:00Z" || as[1].To != "2026-12-06T10:02:00Z" {
		t.Fatalf("anomalies: %+v", as)
	}
	if as[0].Filter != "dst_addr = 2001:db8::2 AND dst_port = 80 AND ip_proto = tcp" || string(as[1].Evidence) != `{"ports":120}` {
		t.Errorf("syn_flood filter %q, evidence %s", as[0].Filter, as[1].Evidence)
	}
	// The link from the anomaly reaches its packets.
	var r packetsResponse
	f.get(t, "/api/v1/packets", url.Values{"from": {as[1].From}, "to": {as[1].To}, "filter": {as[1].Filter}}, &r)
	if len(r.Packets) != 2 {
		t.Errorf("the port scan's packets: %d, want 2", len(r.Packets))
	}
}

func TestPipelineView(t *testing.T) {
	f := newFixture(t, handPackets)
	// One stats report of one collector run: the kernel saw 10 packets in the 10:00 minute,
	// where 3 rows (of sample rate 1) were stored.
	f.insert(t, "collector_stats", []pkt{{"ts": at(30 * time.Second), "host": "h1", "iface": "eth0", "collector_id": 7, "raw": `{"kernel_seen":10,"records_acked":1}`}})
	f.insert(t, "dead_letters", []pkt{{"ts": "2026-12-06 10:05:00.000", "topic": "packets", "partition": 0, "offset": 42, "error": "bad frame", "raw": ""}})
	var p pipelineResponse
	if code, body := f.get(t, "/api/v1/pipeline", twoHours, &p); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var found bool
	for _, r := range p.LossBudget {
		if r["host"] == "h1" && r["minute"] == "2026-12-06 10:00:00" {
			found = true
			if r["seen"].(float64) != 10 || r["stored"].(float64) != 3 || r["unaccounted"].(float64) != 7 {
				t.Errorf("loss budget row %v", r)
			}
		}
	}
	if !found {
		t.Errorf("no loss budget row for h1 at 10:00: %v", p.LossBudget)
	}
	if len(p.Freshness) != 2 || len(p.DeadLetters) != 1 || p.DeadLettersLatest[0]["error"] != "bad frame" {
		t.Errorf("freshness %v dead letters %v %v", p.Freshness, p.DeadLetters, p.DeadLettersLatest)
	}
}

func TestComplete(t *testing.T) {
	f := newFixture(t, handPackets)
	var c completion
	f.get(t, "/api/v1/complete", with(twoHours, "column", "dst_port", "prefix", "4"), &c)
	if len(c.Values) != 1 || c.Values[0] != "443" || c.Table != "traffic_1m" {
		t.Errorf("dst_port 4…: %+v", c)
	}
	f.get(t, "/api/v1/complete", with(twoHours, "column", "dns_qname"), &c)
	if len(c.Values) != 1 || c.Values[0] != "a.example" || c.Table != "dns_names_1m" {
		t.Errorf("dns_qname: %+v", c)
	}
	f.get(t, "/api/v1/complete", with(twoHours, "column", "src_addr", "prefix", "10.0.0"), &c)
	if strings.Join(c.Values, ",") != "10.0.0.1,10.0.0.3" {
		t.Errorf("src_addr 10.0.0…: %+v", c)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, handPackets)
	reg := prometheus.NewRegistry()
	m := &fixture{db: f.db, q: f.q}
	m.url = newTestServer(t, New(Config{Querier: f.q, Now: f.srv.cfg.Now, Metrics: reg}))
	m.traffic(t, with(twoHours, "dims", "dst_port"))
	m.traffic(t, with(twoHours, "dims", "ttl"))
	m.get(t, "/api/v1/traffic", with(twoHours, "filter", "nope"), nil)
	_, body := m.get(t, "/metrics", url.Values{}, nil)
	for _, want := range []string{
		`packetlake_console_requests_total{code="200",endpoint="traffic"} 2`,
		`packetlake_console_requests_total{code="400",endpoint="traffic"} 1`,
		`packetlake_console_request_seconds_count{endpoint="traffic",table="traffic_1m"} 1`,
		`packetlake_console_request_seconds_count{endpoint="traffic",table="packets"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
