package console

import (
	"slices"
	"strings"
	"time"
)

// A source is a table the traffic view can read: the raw packets or one of the rollups the
// materialized views of schema/migrations keep (0100, 0101). Each names the packets columns
// it holds (and under which name), its time column and granularity, and its packet and byte
// counts, already scaled by sample_rate like every report.
type source struct {
	Table   string
	Time    string        // time column, as DateTime
	Range   string        // the column the time range is applied to
	Grain   time.Duration // rows are per Grain: the range and step must be multiples of it
	Cols    map[string]string
	Packets string // aggregate of packets
	Bytes   string // aggregate of bytes, "" if the table has none
	Family  string // the L7 family whose packets alone it holds, "" for all packets
}

func cols(names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		k, v, ok := strings.Cut(n, "=")
		if !ok {
			v = k
		}
		m[k] = v
	}
	return m
}

var rawSource = source{Table: "packets", Time: "toDateTime(ts)", Range: "ts", Grain: time.Second,
	Packets: "sum(sample_rate)", Bytes: "sum(pkt_len * sample_rate)"}

// sources in the order the chooser tries them: the smallest table first.
var sources = func() []source {
	var out []source
	for _, g := range []struct {
		suffix, time string
		grain        time.Duration
	}{{"_1h", "hour", time.Hour}, {"_1m", "minute", time.Minute}} {
		mk := func(name string, c map[string]string, packets, bytes, family string) source {
			return source{Table: name + g.suffix, Time: g.time, Range: g.time, Grain: g.grain, Cols: c, Packets: packets, Bytes: bytes, Family: family}
		}
		out = append(out,
			mk("dns_names", cols("host", "iface", "dns_qname=qname", "dns_qtype=qtype"), "sum(queries + responses)", "", "dns"),
			mk("tls_sni", cols("host", "iface", "tls_sni=sni"), "sum(client_hellos)", "", "tls"),
			mk("http_hosts", cols("host", "iface", "http_host", "http_method=method"), "sum(requests)", "", "http"),
			mk("traffic", cols("host", "iface", "vlan_id", "ip_version", "ip_proto", "dst_port"), "sum(packets)", "sum(bytes)", ""),
			mk("talkers", cols("host", "iface", "src_addr"), "sum(packets)", "sum(bytes)", ""),
			mk("flows", cols("host", "iface", "src_addr", "dst_addr", "ip_proto", "src_port", "dst_port"), "sum(packets)", "sum(bytes)", ""),
		)
	}
	return out
}()

// trafficQuery is what the traffic view asks, after parsing.
type trafficQuery struct {
	From, To time.Time // aligned to Step
	Step     time.Duration
	Dims     []*dimension
	Filter   compiled
	Unit     string // pps or bps
	Limit    int
}

// families is the set of L7 families the query's grouping restricts it to.
func (q trafficQuery) families() []string {
	var f []string
	for _, d := range q.Dims {
		if d.Family != "" && !slices.Contains(f, d.Family) {
			f = append(f, d.Family)
		}
	}
	slices.Sort(f)
	return f
}

// neededColumns lists the packets columns the query reads.
func (q trafficQuery) neededColumns() []string {
	var c []string
	for _, d := range q.Dims {
		c = append(c, columns(d.Expr)...)
	}
	c = append(c, q.Filter.Columns...)
	for _, f := range q.families() {
		c = append(c, columns(familyCond[f])...)
	}
	slices.Sort(c)
	return slices.Compact(c)
}

// choice is the chooser's answer: the table and, for each cheaper one, why not.
type choice struct {
	Source   source
	Rejected []string
}

// choose picks the smallest table that answers q exactly: a rollup holds every column the
// grouping and the filter read, its rows are as fine as the step and the range (so every
// bucket sums whole rows), it has the measure asked for, and it counts the same packets (an
// L7 rollup answers exactly the groupings by its own family, which count only its packets).
func choose(q trafficQuery) choice {
	var rejected []string
	need := q.neededColumns()
	fam := q.families()
	for _, s := range sources {
		why := ""
		switch {
		case q.Step%s.Grain != 0 || q.From.Unix()%int64(s.Grain/time.Second) != 0 || q.To.Unix()%int64(s.Grain/time.Second) != 0:
			why = "step or range not in whole " + map[time.Duration]string{time.Hour: "hours", time.Minute: "minutes"}[s.Grain]
		case s.Family == "" && len(fam) > 0:
			why = "counts all packets, the grouping counts only " + strings.Join(fam, "+") + " packets"
		case s.Family != "" && !slices.Equal(fam, []string{s.Family}):
			why = "holds only " + s.Family + " packets"
		case q.Unit == "bps" && s.Bytes == "":
			why = "has no byte counts"
		default:
			for _, c := range need {
				if _, ok := s.Cols[c]; !ok {
					why = "has no " + c
					break
				}
			}
		}
		if why == "" {
			return choice{Source: s, Rejected: rejected}
		}
		rejected = append(rejected, s.Table+": "+why)
	}
	return choice{Source: rawSource, Rejected: rejected}
}

// timeParams sets the from and to parameters in the type of the source's time column and
// returns that type.
func (s source) timeParams(params map[string]string, from, to time.Time) string {
	if s.Table == "packets" {
		params["from"], params["to"] = from.Format(chTime), to.Format(chTime)
		return "DateTime64(9)"
	}
	params["from"], params["to"] = from.Format(time.DateTime), to.Format(time.DateTime)
	return "DateTime"
}

// render puts a source's column names into an expression over ${column} placeholders.
func (s source) render(expr string) string {
	var b strings.Builder
	for {
		i := strings.Index(expr, "${")
		if i < 0 {
			b.WriteString(expr)
			return b.String()
		}
		j := strings.IndexByte(expr[i:], '}')
		name := expr[i+2 : i+j]
		b.WriteString(expr[:i])
		if s.Cols == nil {
			b.WriteString(name)
		} else {
			b.WriteString(s.Cols[name])
		}
		expr = expr[i+j+1:]
	}
}
