package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/schema"
)

// The tests run against a real ClickHouse, started once for the package.
var env *testinfra.Env

func TestMain(m *testing.M) {
	os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true}, &env))
}

// base is the start of the hand-made data; the tests' "now" is two hours later.
var base = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// fixture is a database with the schema and the hand-checked packets below, and a console
// server over it.
type fixture struct {
	db  string
	q   *chconn.Client
	srv *Server
	url string
}

// pkt is one hand-made packet; omitted columns take the table's defaults (0 or ”).
type pkt map[string]any

func at(d time.Duration) string { return base.Add(d).Format("2006-01-02 15:04:05.000000000") }

// handPackets: every expectation in the tests is worked out by hand from these rows.
//
//	#  time      host iface src              dst             proto sport dport len  rate  L7
//	1  10:00:05  h1   eth0  10.0.0.1         10.0.0.2        TCP   40000 443   60   1     SYN
//	2  10:00:10  h1   eth0  10.0.0.1         10.0.0.2        TCP   40000 443   1500 1     ACK, SNI example.com
//	3  10:01:30  h1   eth0  10.0.0.3         10.0.0.2        UDP   53000 53    80   4     DNS a.example
//	4  10:02:00  h1   eth1  2001:db8::1      2001:db8::2     TCP   1234  80    500  2     HTTP GET web/index
//	5  11:10:00  h2   eth0  10.0.0.1         10.0.0.2        TCP   40000 443   100  10
//	6  10:00:20  h1   eth0  10.0.1.5         10.0.0.2        ICMP  -     -     98   1     echo request
var handPackets = []pkt{
	{"ts": at(5 * time.Second), "host": "h1", "iface": "eth0", "seq": 1, "ip_version": 4, "src_addr": "::ffff:10.0.0.1", "dst_addr": "::ffff:10.0.0.2", "ip_proto": 6, "src_port": 40000, "dst_port": 443, "tcp_flags": 0x02, "pkt_len": 60, "sample_rate": 1, "ttl": 64},
	{"ts": at(10 * time.Second), "host": "h1", "iface": "eth0", "seq": 2, "ip_version": 4, "src_addr": "::ffff:10.0.0.1", "dst_addr": "::ffff:10.0.0.2", "ip_proto": 6, "src_port": 40000, "dst_port": 443, "tcp_flags": 0x10, "pkt_len": 1500, "sample_rate": 1, "tls_sni": "example.com", "ttl": 64},
	{"ts": at(90 * time.Second), "host": "h1", "iface": "eth0", "seq": 3, "ip_version": 4, "src_addr": "::ffff:10.0.0.3", "dst_addr": "::ffff:10.0.0.2", "ip_proto": 17, "src_port": 53000, "dst_port": 53, "pkt_len": 80, "sample_rate": 4, "dns_qname": "a.example", "dns_qtype": 1, "dns_id": 0xbeef, "ttl": 63},
	{"ts": at(120 * time.Second), "host": "h1", "iface": "eth1", "seq": 4, "ip_version": 6, "src_addr": "2001:db8::1", "dst_addr": "2001:db8::2", "ip_proto": 6, "src_port": 1234, "dst_port": 80, "tcp_flags": 0x18, "pkt_len": 500, "sample_rate": 2, "http_method": "GET", "http_host": "web", "http_path": "/index", "ttl": 64},
	{"ts": at(70 * time.Minute), "host": "h2", "iface": "eth0", "seq": 1, "ip_version": 4, "src_addr": "::ffff:10.0.0.1", "dst_addr": "::ffff:10.0.0.2", "ip_proto": 6, "src_port": 40000, "dst_port": 443, "pkt_len": 100, "sample_rate": 10, "ttl": 64},
	{"ts": at(20 * time.Second), "host": "h1", "iface": "eth0", "seq": 5, "ip_version": 4, "src_addr": "::ffff:10.0.1.5", "dst_addr": "::ffff:10.0.0.2", "ip_proto": 1, "icmp_type": 8, "pkt_len": 98, "sample_rate": 1, "ttl": 64},
}

func newFixture(t *testing.T, rows []pkt) *fixture {
	t.Helper()
	db := env.Database(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := schema.Migrate(ctx, env.CH(t), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	q, err := chconn.Config{HTTPAddr: env.ClickHouse.HTTPAddr(), Database: db}.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	f := &fixture{db: db, q: q}
	f.insert(t, "packets", rows)
	f.srv = New(Config{Querier: f.q, Now: func() time.Time { return base.Add(2 * time.Hour) }})
	hs := httptest.NewServer(f.srv)
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

// insert writes rows as JSONEachRow (materialized views fill the rollups as in production).
func (f *fixture) insert(t *testing.T, table string, rows []pkt) {
	t.Helper()
	var b strings.Builder
	for _, r := range rows {
		j, _ := json.Marshal(r)
		b.Write(j)
		b.WriteByte('\n')
	}
	f.exec(t, "INSERT INTO "+table+" FORMAT JSONEachRow\n"+b.String())
}

func (f *fixture) exec(t *testing.T, sql string) {
	t.Helper()
	u := "http://" + env.ClickHouse.HTTPAddr() + "/?" + url.Values{"database": {f.db}, "session_timezone": {"UTC"}}.Encode()
	resp, err := http.Post(u, "text/plain", strings.NewReader(sql))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("clickhouse: %s: %s\n%s", resp.Status, body, sql)
	}
}

// sqlScalar runs a query and returns its one TabSeparated value.
func (f *fixture) sqlScalar(t *testing.T, sql string) string {
	t.Helper()
	rc, err := f.q.Query(t.Context(), sql, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return strings.TrimSpace(string(b))
}

// get calls the API and decodes its JSON into out; it returns the status and the raw body.
func (f *fixture) get(t *testing.T, path string, v url.Values, out any) (int, string) {
	t.Helper()
	resp, err := http.Get(f.url + path + "?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return resp.StatusCode, e.Error
		}
	}
	if resp.StatusCode == 200 && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, body)
		}
	}
	return resp.StatusCode, string(body)
}

func (f *fixture) traffic(t *testing.T, v url.Values) trafficResponse {
	t.Helper()
	var r trafficResponse
	if code, body := f.get(t, "/api/v1/traffic", v, &r); code != 200 {
		t.Fatalf("traffic %v: %d %s", v, code, body)
	}
	return r
}

// totals maps each row's key (joined by "|") to its total.
func totals(r trafficResponse) map[string]uint64 {
	m := map[string]uint64{}
	for _, row := range r.Rows {
		m[strings.Join(row.Key, "|")] = row.Total
	}
	return m
}

func eqTotals(t *testing.T, what string, got, want map[string]uint64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func newTestServer(t *testing.T, h http.Handler) string {
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}
