package analytics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/query"
	"github.com/packetlake/packetlake/record"
)

// The named reports against the known dataset, each answer computed independently in Go from the
// same rows (record.Packet) that were inserted, and compared value by value.

type row map[string]any

// approx is a float a report rounds: equal within tol (ClickHouse rounds ties to even).
type approx struct{ v, tol float64 }

type reportCheck struct {
	key  []string              // columns that identify a row
	sort func(r row) []float64 // the report's ORDER BY, as a key that must not increase
	want func(ps []record.Packet) []row
}

// addr is an address as the reports print it: IPv4 as a dotted quad, not ::ffff:a.b.c.d.
func addr(a [16]byte) string { return netip.AddrFrom16(a).Unmap().String() }
func minute(ts int64) string {
	return time.Unix(0, ts).UTC().Truncate(time.Minute).Format("2006-01-02 15:04:05")
}
func ns(ts int64) string { return time.Unix(0, ts).UTC().Format("2006-01-02 15:04:05.000000000") }
func chRound(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// set counts distinct values.
type set[T comparable] map[T]struct{}

func (s set[T]) add(v T) set[T] {
	if s == nil {
		s = set[T]{}
	}
	s[v] = struct{}{}
	return s
}

func protoName(p record.Packet, top bool) string {
	names := map[uint8]string{6: "tcp", 17: "udp", 132: "sctp"}
	if !top {
		names = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 47: "gre"}
		if _, ok := names[p.IPProto]; !ok && p.IPVersion == 0 {
			return "-"
		}
	}
	if n, ok := names[p.IPProto]; ok {
		return n
	}
	return strconv.Itoa(int(p.IPProto))
}

func f(v any) float64 {
	switch x := v.(type) {
	case uint64:
		return float64(x)
	case approx:
		return x.v
	case float64:
		return x
	case json.Number:
		v, _ := x.Float64()
		return v
	case string: // 64-bit integers come quoted
		v, _ := strconv.ParseFloat(x, 64)
		return v
	}
	panic(fmt.Sprintf("not a number: %T", v))
}

var reportChecks = map[string]reportCheck{
	"top_talkers": {
		key:  []string{"source"},
		sort: func(r row) []float64 { return []float64{f(r["bytes"])} },
		want: func(ps []record.Packet) []row {
			type agg struct {
				packets, bytes uint64
				ports          set[uint16]
			}
			m := map[string]*agg{}
			for _, p := range ps {
				a := m[addr(p.SrcAddr)]
				if a == nil {
					a = &agg{ports: set[uint16]{}}
					m[addr(p.SrcAddr)] = a
				}
				a.packets += uint64(p.SampleRate)
				a.bytes += uint64(p.PktLen) * uint64(p.SampleRate)
				if p.IPProto == 6 || p.IPProto == 17 {
					a.ports.add(p.DstPort)
				}
			}
			var out []row
			for k, a := range m {
				// Enrichment is empty here (no GeoIP loaded, no passive DNS cycle): enrich/reports_test.go checks it filled.
				out = append(out, row{"source": k, "packets": a.packets, "bytes": a.bytes, "dst_ports": uint64(len(a.ports)),
					"country": "", "asn": uint64(0), "as_org": "", "name": ""})
			}
			return out
		},
	},
	"top_ports": {
		key:  []string{"proto", "dst_port"},
		sort: func(r row) []float64 { return []float64{f(r["packets"])} },
		want: func(ps []record.Packet) []row {
			type agg struct {
				packets, bytes uint64
				srcs           set[[16]byte]
			}
			type k struct {
				proto string
				port  uint16
			}
			m := map[k]*agg{}
			for _, p := range ps {
				if p.IPProto != 6 && p.IPProto != 17 && p.IPProto != 132 {
					continue
				}
				key := k{protoName(p, true), p.DstPort}
				a := m[key]
				if a == nil {
					a = &agg{srcs: set[[16]byte]{}}
					m[key] = a
				}
				a.packets += uint64(p.SampleRate)
				a.bytes += uint64(p.PktLen) * uint64(p.SampleRate)
				a.srcs.add(p.SrcAddr)
			}
			var out []row
			for key, a := range m {
				out = append(out, row{"proto": key.proto, "dst_port": uint64(key.port), "packets": a.packets, "bytes": a.bytes, "sources": uint64(len(a.srcs))})
			}
			return out
		},
	},
	"protocols": {
		key:  []string{"eth_type", "ip_version", "proto"},
		sort: func(r row) []float64 { return []float64{f(r["packets"])} },
		want: func(ps []record.Packet) []row {
			type k struct {
				eth   uint16
				ver   uint8
				proto string
			}
			type agg struct{ packets, bytes uint64 }
			m := map[k]*agg{}
			var total uint64
			for _, p := range ps {
				key := k{p.EthType, p.IPVersion, protoName(p, false)}
				if m[key] == nil {
					m[key] = &agg{}
				}
				m[key].packets += uint64(p.SampleRate)
				m[key].bytes += uint64(p.PktLen) * uint64(p.SampleRate)
				total += uint64(p.SampleRate)
			}
			var out []row
			for key, a := range m {
				out = append(out, row{"eth_type": uint64(key.eth), "ip_version": uint64(key.ver), "proto": key.proto,
					"packets": a.packets, "bytes": a.bytes, "pct_packets": approx{chRound(100*float64(a.packets)/float64(total), 2), 0.0101}})
			}
			return out
		},
	},
	"dns_names": {
		key:  []string{"name"},
		sort: func(r row) []float64 { return []float64{f(r["queries"]) + f(r["responses"])} },
		want: func(ps []record.Packet) []row {
			type agg struct {
				q, r, nx uint64
				clients  set[[16]byte]
			}
			m := map[string]*agg{}
			for _, p := range ps {
				if p.DNSQName == "" {
					continue
				}
				a := m[p.DNSQName]
				if a == nil {
					a = &agg{clients: set[[16]byte]{}}
					m[p.DNSQName] = a
				}
				if p.DNSIsResponse == 0 {
					a.q += uint64(p.SampleRate)
				} else {
					a.r += uint64(p.SampleRate)
					if p.DNSRCode == 3 {
						a.nx += uint64(p.SampleRate)
					}
				}
				a.clients.add(p.SrcAddr)
			}
			var out []row
			for k, a := range m {
				out = append(out, row{"name": k, "queries": a.q, "responses": a.r, "nxdomain": a.nx, "clients": uint64(len(a.clients))})
			}
			return out
		},
	},
	"dns_nxdomain_rate": {
		key: []string{"minute"},
		sort: func(r row) []float64 {
			t, _ := time.Parse("2006-01-02 15:04:05", r["minute"].(string))
			return []float64{-float64(t.Unix())}
		},
		want: func(ps []record.Packet) []row {
			type agg struct{ r, nx uint64 }
			m := map[string]*agg{}
			for _, p := range ps {
				if p.DNSQName == "" {
					continue
				}
				a := m[minute(p.TS)]
				if a == nil {
					a = &agg{}
					m[minute(p.TS)] = a
				}
				if p.DNSIsResponse == 1 {
					a.r += uint64(p.SampleRate)
					if p.DNSRCode == 3 {
						a.nx += uint64(p.SampleRate)
					}
				}
			}
			var out []row
			for k, a := range m {
				pct := 0.0
				if a.r > 0 {
					pct = chRound(100*float64(a.nx)/float64(a.r), 2)
				}
				out = append(out, row{"minute": k, "responses": a.r, "nxdomain": a.nx, "nxdomain_pct": approx{pct, 0.0101}})
			}
			return out
		},
	},
	"fragments": {
		key:  []string{"source", "ip_version"},
		sort: func(r row) []float64 { return []float64{f(r["first_fragments"]) + f(r["later_fragments"])} },
		want: func(ps []record.Packet) []row {
			type k struct {
				src string
				ver uint8
			}
			type agg struct {
				first, later uint64
				ids          set[uint32]
				maxOff       uint16
			}
			m := map[k]*agg{}
			for _, p := range ps {
				if p.IPFlags&1 == 0 && p.FragOffset == 0 {
					continue
				}
				key := k{addr(p.SrcAddr), p.IPVersion}
				a := m[key]
				if a == nil {
					a = &agg{ids: set[uint32]{}}
					m[key] = a
				}
				if p.FragOffset == 0 {
					a.first += uint64(p.SampleRate)
				} else {
					a.later += uint64(p.SampleRate)
				}
				a.ids.add(p.IPID)
				a.maxOff = max(a.maxOff, p.FragOffset)
			}
			var out []row
			for key, a := range m {
				out = append(out, row{"source": key.src, "ip_version": uint64(key.ver), "first_fragments": a.first,
					"later_fragments": a.later, "datagrams": uint64(len(a.ids)), "max_offset": uint64(a.maxOff)})
			}
			return out
		},
	},
	"http_hosts": {
		key:  []string{"host"},
		sort: func(r row) []float64 { return []float64{f(r["requests"])} },
		want: func(ps []record.Packet) []row {
			type agg struct {
				requests uint64
				methods  set[string]
				lastTS   int64
				lastPath string
				clients  set[[16]byte]
			}
			m := map[string]*agg{}
			for _, p := range ps {
				if p.HTTPMethod == "" {
					continue
				}
				a := m[p.HTTPHost]
				if a == nil {
					a = &agg{methods: set[string]{}, clients: set[[16]byte]{}, lastTS: math.MinInt64}
					m[p.HTTPHost] = a
				}
				a.requests += uint64(p.SampleRate)
				a.methods.add(p.HTTPMethod)
				a.clients.add(p.SrcAddr)
				if p.TS > a.lastTS {
					a.lastTS, a.lastPath = p.TS, p.HTTPPath
				}
			}
			var out []row
			for k, a := range m {
				var methods []string
				for mth := range a.methods {
					methods = append(methods, mth)
				}
				sort.Strings(methods)
				out = append(out, row{"host": k, "requests": a.requests, "methods": methods, "sample_path": a.lastPath, "clients": uint64(len(a.clients))})
			}
			return out
		},
	},
	"interface_rates": {
		key: []string{"host", "iface", "minute"},
		sort: func(r row) []float64 {
			t, _ := time.Parse("2006-01-02 15:04:05", r["minute"].(string))
			return []float64{float64(t.Unix()), f(r["packets"])}
		},
		want: func(ps []record.Packet) []row {
			type k struct{ host, iface, minute string }
			type agg struct{ packets, bytes, errs uint64 }
			m := map[k]*agg{}
			for _, p := range ps {
				key := k{p.Host, p.Iface, minute(p.TS)}
				if m[key] == nil {
					m[key] = &agg{}
				}
				a := m[key]
				a.packets += uint64(p.SampleRate)
				a.bytes += uint64(p.PktLen) * uint64(p.SampleRate)
				if p.ParseError != "" {
					a.errs += uint64(p.SampleRate)
				}
			}
			var out []row
			for key, a := range m {
				out = append(out, row{"host": key.host, "iface": key.iface, "minute": key.minute, "packets": a.packets,
					"pps": approx{chRound(float64(a.packets)/60, 1), 0.101}, "bps": approx{math.Round(8 * float64(a.bytes) / 60), 1.01},
					"parse_errors": a.errs})
			}
			return out
		},
	},
	"syn_without_handshake": {
		key: []string{"destination", "dst_port"},
		sort: func(r row) []float64 {
			return []float64{f(r["syns"]) - math.Min(f(r["acks"]), f(r["syns"]))}
		},
		want: func(ps []record.Packet) []row {
			type k struct {
				dst  string
				port uint16
			}
			type agg struct {
				syns, acks uint64
				srcs       set[[16]byte]
			}
			m := map[k]*agg{}
			for _, p := range ps {
				if p.IPProto != 6 {
					continue
				}
				key := k{addr(p.DstAddr), p.DstPort}
				a := m[key]
				if a == nil {
					a = &agg{srcs: set[[16]byte]{}}
					m[key] = a
				}
				if p.TCPFlags&0x12 == 0x02 {
					a.syns += uint64(p.SampleRate)
					a.srcs.add(p.SrcAddr)
				}
				if p.TCPFlags&0x17 == 0x10 {
					a.acks += uint64(p.SampleRate)
				}
			}
			var out []row
			for key, a := range m {
				if a.syns == 0 {
					continue
				}
				ratio := chRound(1-float64(min(a.acks, a.syns))/float64(a.syns), 3)
				out = append(out, row{"destination": key.dst, "dst_port": uint64(key.port), "syns": a.syns, "acks": a.acks,
					"syn_sources": uint64(len(a.srcs)), "incomplete_ratio": approx{ratio, 0.00101}})
			}
			return out
		},
	},
	"tunnels": {
		key:  []string{"tunnel_type", "tunnel_id", "tunnel_source", "tunnel_destination"},
		sort: func(r row) []float64 { return []float64{f(r["bytes"])} },
		want: func(ps []record.Packet) []row {
			type k struct {
				typ      string
				id       uint32
				src, dst string
			}
			type agg struct {
				packets, bytes uint64
				depth          uint8
				pairs          set[[32]byte]
			}
			m := map[k]*agg{}
			for _, p := range ps {
				if p.TunnelDepth == 0 {
					continue
				}
				key := k{p.TunnelType, p.TunnelID, addr(p.TunnelSrc), addr(p.TunnelDst)}
				a := m[key]
				if a == nil {
					a = &agg{pairs: set[[32]byte]{}}
					m[key] = a
				}
				a.packets += uint64(p.SampleRate)
				a.bytes += uint64(p.PktLen) * uint64(p.SampleRate)
				a.depth = max(a.depth, p.TunnelDepth)
				a.pairs.add([32]byte(append(p.SrcAddr[:], p.DstAddr[:]...)))
			}
			var out []row
			for key, a := range m {
				out = append(out, row{"tunnel_type": key.typ, "tunnel_id": uint64(key.id), "tunnel_source": key.src,
					"tunnel_destination": key.dst, "max_depth": uint64(a.depth), "packets": a.packets, "bytes": a.bytes,
					"inner_pairs": uint64(len(a.pairs))})
			}
			return out
		},
	},
	"tls_sni": {
		key:  []string{"server_name"},
		sort: func(r row) []float64 { return []float64{f(r["client_hellos"])} },
		want: func(ps []record.Packet) []row {
			type agg struct {
				hellos  uint64
				clients set[[16]byte]
				ports   set[uint16]
			}
			m := map[string]*agg{}
			for _, p := range ps {
				if p.TLSSNI == "" {
					continue
				}
				a := m[p.TLSSNI]
				if a == nil {
					a = &agg{clients: set[[16]byte]{}, ports: set[uint16]{}}
					m[p.TLSSNI] = a
				}
				a.hellos += uint64(p.SampleRate)
				a.clients.add(p.SrcAddr)
				a.ports.add(p.DstPort)
			}
			var out []row
			for k, a := range m {
				var ports []uint64
				for p := range a.ports {
					ports = append(ports, uint64(p))
				}
				slices.Sort(ports)
				if len(ports) > 5 {
					ports = nil // groupUniqArray(5) keeps 5 of them, any 5: only the count is checked
				}
				out = append(out, row{"server_name": k, "client_hellos": a.hellos, "clients": uint64(len(a.clients)), "ports": ports})
			}
			return out
		},
	},
	"top_conversations": {
		key:  []string{"source", "src_port", "destination", "dst_port", "ip_proto"},
		sort: func(r row) []float64 { return []float64{f(r["bytes"])} },
		want: func(ps []record.Packet) []row {
			type k struct {
				src, dst     string
				sport, dport uint16
				proto        uint8
			}
			type agg struct {
				packets, bytes uint64
				first, last    int64
			}
			m := map[k]*agg{}
			for _, p := range ps {
				key := k{addr(p.SrcAddr), addr(p.DstAddr), p.SrcPort, p.DstPort, p.IPProto}
				a := m[key]
				if a == nil {
					a = &agg{first: p.TS, last: p.TS}
					m[key] = a
				}
				a.packets += uint64(p.SampleRate)
				a.bytes += uint64(p.PktLen) * uint64(p.SampleRate)
				a.first, a.last = min(a.first, p.TS), max(a.last, p.TS)
			}
			var out []row
			for key, a := range m {
				out = append(out, row{"source": key.src, "src_port": uint64(key.sport), "destination": key.dst, "dst_port": uint64(key.dport),
					"ip_proto": uint64(key.proto), "packets": a.packets, "bytes": a.bytes, "first_seen": ns(a.first), "last_seen": ns(a.last),
					"src_country": "", "src_asn": uint64(0), "src_name": "", "dst_name": ""}) // enrichment: see top_talkers
			}
			return out
		},
	},
	"ttl_anomalies": {
		key: []string{"source"},
		sort: func(r row) []float64 {
			return []float64{f(r["initial_ttls"]), f(r["max_ttl"]) - f(r["min_ttl"])}
		},
		want: func(ps []record.Packet) []row {
			type agg struct {
				packets        uint64
				minTTL, maxTTL uint8
				initial        set[int]
			}
			m := map[string]*agg{}
			for _, p := range ps {
				if p.IPVersion == 0 {
					continue
				}
				a := m[addr(p.SrcAddr)]
				if a == nil {
					a = &agg{minTTL: p.TTL, maxTTL: p.TTL, initial: set[int]{}}
					m[addr(p.SrcAddr)] = a
				}
				a.packets += uint64(p.SampleRate)
				a.minTTL, a.maxTTL = min(a.minTTL, p.TTL), max(a.maxTTL, p.TTL)
				switch {
				case p.TTL <= 32:
					a.initial.add(32)
				case p.TTL <= 64:
					a.initial.add(64)
				case p.TTL <= 128:
					a.initial.add(128)
				default:
					a.initial.add(255)
				}
			}
			var out []row
			for k, a := range m {
				if a.maxTTL == a.minTTL {
					continue
				}
				out = append(out, row{"source": k, "packets": a.packets, "min_ttl": uint64(a.minTTL), "max_ttl": uint64(a.maxTTL),
					"initial_ttls": uint64(len(a.initial))})
			}
			return out
		},
	},
}

// reportsTestedElsewhere are the reports over more than the packets table, each checked by its own
// test with rows made for it (the known dataset is packets only), and the TCP health reports,
// checked against tshark's analysis of captures and of live traffic (their rules are tshark's,
// not a few lines of Go).
var reportsTestedElsewhere = map[string]string{
	"loss_budget":      "TestLossBudgetReport",
	"top_receivers":    "TestLiveReceivers (test/e2e: flows named by real nginx and dnsmasq)",
	"tcp_health":       "test/e2e TestTCPHealthSampledFlowsSaySo, console TestBrowserTCPHealth",
	"tcp_health_flows": "test/e2e TestTCPHealthCapturesMatchTshark, TestLiveTCPHealth",
	"top_countries":    "enrich.TestReportsShowEnrichment",
	"top_asns":         "enrich.TestReportsShowEnrichment",
}

// same says whether a report's JSON value equals the expected Go value, and how it read it.
func same(want, got any) (bool, string) {
	switch w := want.(type) {
	case uint64:
		var s string
		switch g := got.(type) {
		case json.Number:
			s = g.String()
		case string: // 64-bit integers come quoted
			s = g
		}
		n, err := strconv.ParseUint(s, 10, 64)
		return err == nil && n == w, s
	case approx:
		g, ok := got.(json.Number)
		if !ok {
			return false, fmt.Sprint(got)
		}
		v, err := g.Float64()
		return err == nil && math.Abs(v-w.v) <= w.tol, g.String()
	case string:
		g, ok := got.(string)
		return ok && g == w, fmt.Sprint(got)
	case []string:
		g, _ := got.([]any)
		var s []string
		for _, x := range g {
			str, _ := x.(string)
			s = append(s, str)
		}
		return slices.Equal(s, w), fmt.Sprint(s)
	case []uint64:
		g, _ := got.([]any)
		if w == nil { // more than the report keeps: any subset of the right size
			return len(g) == 5, fmt.Sprint(g)
		}
		var s []uint64
		for _, x := range g {
			n, _ := x.(json.Number)
			v, _ := strconv.ParseUint(n.String(), 10, 64)
			s = append(s, v)
		}
		return slices.Equal(s, w), fmt.Sprint(s)
	}
	return false, fmt.Sprintf("unexpected expected type %T", want)
}

func keyOf(r row, cols []string) string {
	var parts []string
	for _, c := range cols {
		switch v := r[c].(type) {
		case json.Number:
			parts = append(parts, v.String())
		default:
			parts = append(parts, fmt.Sprint(v))
		}
	}
	return strings.Join(parts, "|")
}

// TestReportsMatchGo runs every named report through query.RunSQL (the code of `packetlake
// query`, parameters bound by the server) over the known dataset and compares each row and value
// with the answer computed in Go from the inserted packets: the same set of rows (keys), every
// column equal (rounded columns within their rounding), the report's order respected.
func TestReportsMatchGo(t *testing.T) {
	ch, ds := known(t)
	packets := ds.Packets()
	cfg := query.Config{ClickHouse: ch.Config}
	params := query.Params{Since: ds.From, Until: ds.Until, Limit: 1_000_000}
	reports := query.Reports()
	if len(reports) != len(reportChecks)+len(reportsTestedElsewhere) {
		t.Errorf("%d reports in query/reports, %d checked here and %d elsewhere: check every report",
			len(reports), len(reportChecks), len(reportsTestedElsewhere))
	}
	for _, rep := range reports {
		if _, ok := reportsTestedElsewhere[rep.Name]; ok {
			continue
		}
		t.Run(rep.Name, func(t *testing.T) {
			check, ok := reportChecks[rep.Name]
			if !ok {
				t.Fatalf("report %s has no check", rep.Name)
			}
			var out bytes.Buffer
			if err := query.RunSQL(testCtx(t), cfg, rep.SQL, params, "JSONEachRow", &out); err != nil {
				t.Fatal(err)
			}
			var got []row
			d := json.NewDecoder(&out)
			d.UseNumber()
			for d.More() {
				r := row{}
				if err := d.Decode(&r); err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			want := check.want(packets)
			if len(want) == 0 {
				t.Fatalf("the dataset gives report %s nothing to show", rep.Name)
			}
			byKey := map[string]row{}
			for _, w := range want {
				byKey[keyOf(w, check.key)] = w
			}
			if len(got) != len(want) {
				t.Errorf("%d rows, want %d", len(got), len(want))
			}
			bad := 0
			for i, g := range got {
				k := keyOf(g, check.key)
				w, ok := byKey[k]
				if !ok {
					t.Errorf("row %d: unexpected key %s: %v", i, k, g)
					continue
				}
				delete(byKey, k)
				if len(g) != len(w) {
					t.Errorf("row %s: columns %v, want %v", k, slices.Sorted(mapKeys(g)), slices.Sorted(mapKeys(w)))
				}
				for col, wv := range w {
					if ok, read := same(wv, g[col]); !ok && bad < 10 {
						bad++
						t.Errorf("row %s: %s = %s, want %v", k, col, read, wv)
					}
				}
				if i > 0 && slices.Compare(check.sort(g), check.sort(got[i-1])) > 0 {
					t.Errorf("row %d (%s) is out of the report's order", i, k)
				}
			}
			for k := range byKey {
				t.Errorf("missing row %s", k)
			}
			t.Logf("%d rows match", len(got))
		})
	}
}

func mapKeys(r row) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range r {
			if !yield(k) {
				return
			}
		}
	}
}
