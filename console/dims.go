package console

import "strings"

// A dimension is something traffic can be grouped and filtered by: one column of packets (or
// an expression over columns, like a prefix). Expressions name columns as ${column} so that
// each source table can put its own column names in (dns_names_1m calls dns_qname "qname").
// The dimensions are the allowlist: nothing else reaches SQL.
type dimension struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Kind says what values look like and which operators apply: addr (IPv4/IPv6 addresses,
	// CIDR match), uint (numbers), proto (IP protocol: numbers or names), string.
	Kind string `json:"kind"`
	// Max is the largest value of a uint column.
	Max uint64 `json:"-"`
	// Expr renders the value for grouping (a String); Col is the column filters compare.
	Expr string `json:"-"`
	Col  string `json:"-"`
	// Family: grouping by an L7 field counts only the packets carrying it (DNS questions, TLS
	// ClientHellos with SNI, HTTP requests); the condition is Family's entry of familyCond.
	Family string `json:"family,omitempty"`
	// GroupOnly: a computed dimension (a prefix) has no filter of its own; filter the address.
	GroupOnly bool `json:"groupOnly,omitempty"`
}

// familyCond is, per L7 family, the packets that grouping by one of its fields counts.
var familyCond = map[string]string{
	"dns":  "${dns_qname} != ''",
	"tls":  "${tls_sni} != ''",
	"http": "${http_method} != ''",
}

const addrExpr = `replaceRegexpOne(IPv6NumToString(${%s}), '^::ffff:([0-9.]+)$', '\\1')`

// prefixExpr is an address's /24 (IPv4) or /64 (IPv6) network.
const prefixExpr = `if(startsWith(IPv6NumToString(${%[1]s}), '::ffff:') AND position(IPv6NumToString(${%[1]s}), '.') > 0, ` +
	`concat(replaceRegexpOne(IPv6NumToString(tupleElement(IPv6CIDRToRange(${%[1]s}, 120), 1)), '^::ffff:', ''), '/24'), ` +
	`concat(IPv6NumToString(tupleElement(IPv6CIDRToRange(${%[1]s}, 64), 1)), '/64'))`

func col(c string) string { return "${" + c + "}" }

func uintDim(name, title string, maxv uint64) dimension {
	return dimension{Name: name, Title: title, Kind: "uint", Max: maxv, Expr: "toString(" + col(name) + ")", Col: name}
}

func strDim(name, title, family string) dimension {
	return dimension{Name: name, Title: title, Kind: "string", Expr: "toString(" + col(name) + ")", Col: name, Family: family}
}

func addrDim(name, title string) dimension {
	return dimension{Name: name, Title: title, Kind: "addr", Expr: strings.ReplaceAll(addrExpr, "%s", name), Col: name}
}

var dimensions = []dimension{
	strDim("host", "Host (collector)", ""),
	strDim("iface", "Interface", ""),
	addrDim("src_addr", "Source address"),
	addrDim("dst_addr", "Destination address"),
	{Name: "src_prefix", Title: "Source prefix (/24, /64)", Kind: "addr", Expr: fmtPrefix("src_addr"), GroupOnly: true},
	{Name: "dst_prefix", Title: "Destination prefix (/24, /64)", Kind: "addr", Expr: fmtPrefix("dst_addr"), GroupOnly: true},
	uintDim("src_port", "Source port", 65535),
	uintDim("dst_port", "Destination port", 65535),
	{Name: "ip_proto", Title: "IP protocol", Kind: "proto", Max: 255, Col: "ip_proto",
		Expr: "multiIf(${ip_proto} = 6, 'TCP', ${ip_proto} = 17, 'UDP', ${ip_proto} = 1, 'ICMP', ${ip_proto} = 58, 'ICMPv6', ${ip_proto} = 47, 'GRE', ${ip_proto} = 132, 'SCTP', toString(${ip_proto}))"},
	uintDim("ip_version", "IP version", 6),
	uintDim("vlan_id", "VLAN", 4095),
	uintDim("eth_type", "EtherType", 65535),
	uintDim("ttl", "TTL / hop limit", 255),
	uintDim("tos", "TOS / traffic class", 255),
	uintDim("tcp_flags", "TCP flags", 65535),
	uintDim("icmp_type", "ICMP type", 255),
	uintDim("ifindex", "Interface index", 1<<32-1),
	strDim("dns_qname", "DNS name", "dns"),
	{Name: "dns_qtype", Title: "DNS query type", Kind: "uint", Max: 65535, Expr: "toString(${dns_qtype})", Col: "dns_qtype", Family: "dns"},
	strDim("tls_sni", "TLS server name (SNI)", "tls"),
	strDim("http_host", "HTTP host", "http"),
	strDim("http_method", "HTTP method", "http"),
	strDim("parse_error", "Parse error", ""),
	// Where it comes from (packetlake enrich): dictionaries over the addresses, so every table
	// holding the address answers them; '' (0) while nothing is loaded or known. Filter the address.
	geoDim("src_country", "Source country (GeoIP)", "dictGet('geoip_country_dict', 'country_code', ${src_addr})"),
	geoDim("src_asn", "Source AS (GeoIP)", "concat('AS', toString(dictGet('geoip_asn_dict', 'asn', ${src_addr})), ' ', dictGet('geoip_asn_dict', 'asn_org', ${src_addr}))"),
	geoDim("src_name", "Source name (passive DNS)", "dictGet('passive_dns_dict', 'name', tuple(${src_addr}))"),
	geoDim("dst_name", "Destination name (passive DNS)", "dictGet('passive_dns_dict', 'name', tuple(${dst_addr}))"),
	// Encapsulation (bpf/parse_tun.h): the other columns are the inner packet's. Only the packets
	// table has these; the chooser falls back to it.
	strDim("tunnel_type", "Tunnel type", ""),
	uintDim("tunnel_id", "Tunnel id (VNI, GRE key, label)", 1<<32-1),
	addrDim("tunnel_src", "Tunnel outer source"),
	addrDim("tunnel_dst", "Tunnel outer destination"),
}

func geoDim(name, title, expr string) dimension {
	return dimension{Name: name, Title: title, Kind: "string", Expr: expr, GroupOnly: true}
}

func fmtPrefix(c string) string { return strings.ReplaceAll(prefixExpr, "%[1]s", c) }

var dimByName = func() map[string]*dimension {
	m := map[string]*dimension{}
	for i := range dimensions {
		m[dimensions[i].Name] = &dimensions[i]
	}
	return m
}()

// columns lists the packets columns an expression uses.
func columns(expr string) []string {
	var out []string
	for {
		i := strings.Index(expr, "${")
		if i < 0 {
			return out
		}
		j := strings.IndexByte(expr[i:], '}')
		out = append(out, expr[i+2:i+j])
		expr = expr[i+j+1:]
	}
}

// protoNames are the names the filter accepts for ip_proto.
var protoNames = map[string]uint64{"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "sctp": 132}
