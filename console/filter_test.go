package console

import (
	"strings"
	"testing"
)

// Values never reach the SQL text: every one is a bound parameter, every column a dimension.
func TestFilterCompilesToBoundParameters(t *testing.T) {
	cases := []struct {
		filter, sql string
		params      map[string]string
	}{
		{"dst_port = 443", "${dst_port} = {f0:UInt64}", map[string]string{"f0": "443"}},
		{"src_addr = 10.0.0.1", "${src_addr} = {f0:IPv6}", map[string]string{"f0": "::ffff:10.0.0.1"}},
		{"src_addr << 10.1.2.0/23", "${src_addr} BETWEEN {f0:IPv6} AND {f1:IPv6}", map[string]string{"f0": "::ffff:10.1.2.0", "f1": "::ffff:10.1.3.255"}},
		{"dst_addr !<< 2001:db8::/32", "NOT (${dst_addr} BETWEEN {f0:IPv6} AND {f1:IPv6})", map[string]string{"f0": "2001:db8::", "f1": "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"ip_proto in (tcp, UDP, 58)", "${ip_proto} IN ({f0:UInt64}, {f1:UInt64}, {f2:UInt64})", map[string]string{"f0": "6", "f1": "17", "f2": "58"}},
		{`host = 'x'' OR 1=1'`, "", nil}, // '' is not an escape: the rest is not a condition
		{`http_host LIKE '%'' OR ''1''=''1'`, "", nil},
		{`tls_sni = "a\"); DROP TABLE packets; --"`, "${tls_sni} = {f0:String}", map[string]string{"f0": `a"); DROP TABLE packets; --`}},
		{"NOT (host = a OR iface = b) AND ttl >= 64", "(NOT ((${host} = {f0:String} OR ${iface} = {f1:String})) AND ${ttl} >= {f2:UInt64})", map[string]string{"f0": "a", "f1": "b", "f2": "64"}},
	}
	for _, c := range cases {
		got, err := compileFilter(c.filter)
		if c.sql == "" {
			if err == nil {
				t.Errorf("%q compiled to %q, want an error", c.filter, got.SQL)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		if got.SQL != c.sql {
			t.Errorf("%q: SQL %q, want %q", c.filter, got.SQL, c.sql)
		}
		for k, v := range c.params {
			if got.Params[k] != v {
				t.Errorf("%q: param %s = %q, want %q", c.filter, k, got.Params[k], v)
			}
			if strings.Contains(got.SQL, v) && len(v) > 3 {
				t.Errorf("%q: the value %q is in the SQL text", c.filter, v)
			}
		}
		if len(got.Params) != len(c.params) {
			t.Errorf("%q: params %v, want %v", c.filter, got.Params, c.params)
		}
	}
}
