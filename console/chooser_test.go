package console

import (
	"net/url"
	"testing"
	"time"
)

func TestChooser(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 34, 56, 0, time.UTC)
	cases := []struct {
		v     url.Values
		table string
		step  time.Duration
	}{
		{url.Values{"from": {"now-15m"}, "dims": {"dst_port"}}, "packets", 10 * time.Second},
		{url.Values{"from": {"now-1h"}, "dims": {"dst_port"}}, "traffic_1m", time.Minute},
		{url.Values{"from": {"now-1h"}, "dims": {"dst_port"}, "filter": {"src_port = 1"}}, "flows_1m", time.Minute},
		{url.Values{"from": {"now-24h"}, "dims": {"dst_addr"}}, "flows_1m", 5 * time.Minute},
		{url.Values{"from": {"now-24h"}, "dims": {"src_addr"}}, "talkers_1m", 5 * time.Minute},
		{url.Values{"from": {"now-24h"}}, "traffic_1m", 5 * time.Minute},
		{url.Values{"from": {"now-7d"}, "dims": {"dst_port"}}, "traffic_1h", time.Hour},
		{url.Values{"from": {"now-7d"}, "dims": {"src_port"}}, "flows_1h", time.Hour},
		{url.Values{"from": {"now-30d"}, "dims": {"host"}}, "traffic_1h", 6 * time.Hour},
		{url.Values{"from": {"now-24h"}, "dims": {"dns_qname"}}, "dns_names_1m", 5 * time.Minute},
		{url.Values{"from": {"now-24h"}, "dims": {"dns_qname"}, "unit": {"bps"}}, "packets", 5 * time.Minute},
		{url.Values{"from": {"now-24h"}, "dims": {"dns_qname,tls_sni"}}, "packets", 5 * time.Minute},
		{url.Values{"from": {"now-24h"}, "dims": {"dst_port"}, "filter": {"tls_sni = x"}}, "packets", 5 * time.Minute},
		{url.Values{"from": {"now-24h"}, "dims": {"ttl"}}, "packets", 5 * time.Minute},
		{url.Values{"from": {"now-24h"}, "dims": {"dst_port"}, "step": {"30s"}}, "packets", 30 * time.Second},
	}
	for _, c := range cases {
		q, err := parseTraffic(c.v, now)
		if err != nil {
			t.Fatalf("%v: %v", c.v, err)
		}
		ch := choose(q)
		if ch.Source.Table != c.table || q.Step != c.step {
			t.Errorf("%v: %s at %s, want %s at %s (rejected %v)", c.v, ch.Source.Table, q.Step, c.table, c.step, ch.Rejected)
		}
		if q.From.Unix()%int64(q.Step/time.Second) != 0 || q.To.Unix()%int64(q.Step/time.Second) != 0 || q.To.Before(now) {
			t.Errorf("%v: range %s..%s not aligned to %s around now", c.v, q.From, q.To, q.Step)
		}
	}
}
