package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/packetlake/packetlake/schema"
)

// The packets view: a packet list like Wireshark's over a range and a filter, every stored
// column of each packet for the details pane, and the kernel's exact flow counters beside it.

type packetsResponse struct {
	From      string           `json:"from"`
	To        string           `json:"to"`
	Limit     int              `json:"limit"`
	Truncated bool             `json:"truncated"` // more packets match than Limit
	Columns   []string         `json:"columns"`   // every stored column, in table order
	Packets   []map[string]any `json:"packets"`
}

const maxPackets = 10000

func (s *Server) packetsQuery(ctx context.Context, v url.Values) (*packetsResponse, error) {
	from, to, err := timeRange(v, s.now())
	if err != nil {
		return nil, err
	}
	f, err := compileFilter(v.Get("filter"))
	if err != nil {
		return nil, &BadRequest{err.Error()}
	}
	limit := 500
	if l := v.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > maxPackets {
			return nil, badf("limit=%q: want 1 to %d", l, maxPackets)
		}
	}
	params := map[string]string{"from": from.Format(chTime), "to": to.Format(chTime), "limit": strconv.Itoa(limit + 1)}
	for k, v := range f.Params {
		params[k] = v
	}
	where := "ts >= {from:DateTime64(9)} AND ts < {to:DateTime64(9)}"
	if f.SQL != "" {
		where += " AND " + rawSource.render(f.SQL)
	}
	var names []string
	for _, c := range schema.Columns {
		names = append(names, c.Name)
	}
	sql := fmt.Sprintf("SELECT %s, %s FROM packets WHERE %s ORDER BY ts, host, collector_id, seq LIMIT {limit:UInt32} FORMAT JSONEachRow",
		strings.Join(names, ", "), originColumns, where)
	resp := &packetsResponse{From: from.Format(chTime), To: to.Format(chTime), Limit: limit, Columns: names, Packets: []map[string]any{}}
	err = s.queryRows(ctx, sql, params, func(raw []byte) error {
		var p map[string]any
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		if err := d.Decode(&p); err != nil {
			return err
		}
		resp.Packets = append(resp.Packets, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(resp.Packets) > limit {
		resp.Packets, resp.Truncated = resp.Packets[:limit], true
	}
	for _, p := range resp.Packets {
		decorate(p)
	}
	return resp, nil
}

// originColumns are where each end comes from (packetlake enrich's dictionaries; empty and 0 while
// nothing is loaded or known): shown in the details, not stored columns, so not in the exports.
const originColumns = "dictGet('geoip_country_dict', 'country_code', src_addr) AS src_country, " +
	"dictGet('geoip_asn_dict', 'asn', src_addr) AS src_asn, dictGet('geoip_asn_dict', 'asn_org', src_addr) AS src_as_org, " +
	"dictGet('passive_dns_dict', 'name', tuple(src_addr)) AS src_name, " +
	"dictGet('geoip_country_dict', 'country_code', dst_addr) AS dst_country, " +
	"dictGet('geoip_asn_dict', 'asn', dst_addr) AS dst_asn, dictGet('geoip_asn_dict', 'asn_org', dst_addr) AS dst_as_org, " +
	"dictGet('passive_dns_dict', 'name', tuple(dst_addr)) AS dst_name"

// decorate adds the list's display columns: addresses as people write them, MACs, the protocol
// name, the TCP flags and Wireshark's Info.
func decorate(p map[string]any) {
	str := func(k string) string { s, _ := p[k].(string); return s }
	num := func(k string) uint64 {
		n, _ := p[k].(json.Number)
		u, _ := strconv.ParseUint(n.String(), 10, 64)
		return u
	}
	p["src"] = displayAddr(str("src_addr"))
	p["dst"] = displayAddr(str("dst_addr"))
	p["src_mac_text"] = mac(num("src_mac"))
	p["dst_mac_text"] = mac(num("dst_mac"))
	proto := protoName(num("ip_proto"), num("ip_version"))
	p["proto"] = proto
	p["flags"] = tcpFlags(num("tcp_flags"))
	var info []string
	switch {
	case num("ip_proto") == 6 || num("ip_proto") == 17:
		info = append(info, fmt.Sprintf("%d → %d", num("src_port"), num("dst_port")))
	case num("ip_proto") == 1 || num("ip_proto") == 58:
		info = append(info, fmt.Sprintf("type %d code %d", num("icmp_type"), num("icmp_code")))
	}
	if f := tcpFlags(num("tcp_flags")); f != "" && num("ip_proto") == 6 {
		info = append(info, "["+f+"]")
	}
	if q := str("dns_qname"); q != "" {
		kind := "query"
		if num("dns_is_response") == 1 {
			kind = "response"
			if num("dns_rcode") == 3 {
				kind = "response NXDOMAIN"
			}
		}
		info = append(info, fmt.Sprintf("DNS %s 0x%04x %s (type %d)", kind, num("dns_id"), q, num("dns_qtype")))
	}
	if sni := str("tls_sni"); sni != "" {
		info = append(info, "TLS ClientHello SNI="+sni)
	}
	if m := str("http_method"); m != "" {
		info = append(info, fmt.Sprintf("HTTP %s %s%s", m, str("http_host"), str("http_path")))
	}
	if e := str("parse_error"); e != "" {
		info = append(info, "parse error: "+e)
	}
	p["info"] = strings.Join(info, " ")
}

func displayAddr(s string) string {
	if rest, ok := strings.CutPrefix(s, "::ffff:"); ok && strings.Contains(rest, ".") {
		return rest
	}
	return s
}

func mac(u uint64) string {
	b := make([]string, 6)
	for i := range 6 {
		b[i] = fmt.Sprintf("%02x", byte(u>>(8*(5-i))))
	}
	return strings.Join(b, ":")
}

func protoName(p, version uint64) string {
	if version == 0 {
		return "L2"
	}
	for n, v := range protoNames {
		if v == p {
			return strings.ToUpper(strings.Replace(n, "icmpv6", "ICMPv6", 1))
		}
	}
	return strconv.FormatUint(p, 10)
}

func tcpFlags(f uint64) string {
	var out []string
	for i, n := range []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"} {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// packetsHandler serves the list as JSON, or as a download (format=csv or format=json).
func (s *Server) packetsHandler(w http.ResponseWriter, r *http.Request) {
	resp, err := s.packetsQuery(r.Context(), r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch r.URL.Query().Get("format") {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="packets.csv"`)
		cw := csv.NewWriter(w)
		cols := slices.Concat([]string{"info"}, resp.Columns)
		cw.Write(cols)
		for _, p := range resp.Packets {
			rec := make([]string, len(cols))
			for i, c := range cols {
				rec[i] = fmt.Sprint(p[c])
			}
			cw.Write(rec)
		}
		cw.Flush()
	case "json":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="packets.json"`)
		json.NewEncoder(w).Encode(resp.Packets)
	case "":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(resp)
	default:
		s.fail(w, r, badf("format=%q: want csv or json", r.URL.Query().Get("format")))
	}
}

// flowColumns are the filter columns the flows table holds.
var flowColumns = []string{"host", "iface", "ifindex", "vlan_id", "ip_version", "ip_proto", "src_addr", "dst_addr", "src_port", "dst_port"}

type flowsResponse struct {
	Available bool             `json:"available"`
	Reason    string           `json:"reason,omitempty"`
	Flows     []map[string]any `json:"flows"`
}

// flows are the exact kernel counters of the flows matching the filter, summed over the exports
// in the range (an export's ts is when the collector read the counters), with the local process
// the newest export names as the flow's receiver (collect --receivers; pid 0: none seen).
func (s *Server) flows(ctx context.Context, v url.Values) (any, error) {
	from, to, err := timeRange(v, s.now())
	if err != nil {
		return nil, err
	}
	f, err := compileFilter(v.Get("filter"))
	if err != nil {
		return nil, &BadRequest{err.Error()}
	}
	for _, c := range f.Columns {
		if !slices.Contains(flowColumns, c) {
			return flowsResponse{Reason: "the flow counters have no " + c + " (they are kept per 5-tuple, VLAN and interface)", Flows: []map[string]any{}}, nil
		}
	}
	params := map[string]string{"from": from.Format(chTime), "to": to.Format(chTime)}
	for k, v := range f.Params {
		params[k] = v
	}
	where := "ts >= {from:DateTime64(9)} AND ts < {to:DateTime64(9)}"
	if f.SQL != "" {
		where += " AND " + rawSource.render(f.SQL)
	}
	sql := `SELECT host, iface, vlan_id, ip_proto, src_addr, dst_addr, src_port, dst_port,
  sum(packets) AS packets, sum(bytes) AS bytes, sum(syn) AS syn, sum(fin) AS fin, sum(rst) AS rst, sum(ack) AS ack,
  min(first_seen) AS first_seen, max(last_seen) AS last_seen, count() AS exports,
  argMax(recv_pid, ts) AS recv_pid, argMax(recv_comm, ts) AS recv_comm,
  argMax(recv_container_id, ts) AS recv_container, argMax(recv_pod_uid, ts) AS recv_pod
FROM flows WHERE ` + where + `
GROUP BY host, iface, vlan_id, ip_proto, src_addr, dst_addr, src_port, dst_port
ORDER BY packets DESC, bytes DESC LIMIT 200 FORMAT JSONEachRow`
	out := flowsResponse{Available: true, Flows: []map[string]any{}}
	err = s.queryRows(ctx, sql, params, func(raw []byte) error {
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return err
		}
		m["src"], m["dst"] = displayAddr(m["src_addr"].(string)), displayAddr(m["dst_addr"].(string))
		n, _ := m["ip_proto"].(json.Number)
		u, _ := strconv.ParseUint(n.String(), 10, 64)
		m["proto"] = protoName(u, 4)
		out.Flows = append(out.Flows, m)
		return nil
	})
	return out, err
}
