package bench

import "github.com/packetlake/packetlake/record"

// Issue #18's untried lever, priced here and nowhere in the product: the ingester aggregates the
// batch it already holds and writes every rollup itself, so no materialized view runs on the
// packets insert. rollupAgg is that aggregation, the same definitions as the views of migrations
// 0100, 0101, 0200, 0201, 0401 and 0600 (counts scaled by sample_rate, minute and hour tiers,
// detect_dst_1s per second). For the uniq columns Go keeps the distinct (key, value) tuples with
// their sums, and ClickHouse builds the states from them (ingagg_insert_test.go): Go cannot
// write ClickHouse's uniq state. Times are UTC seconds, as the server's toStartOfMinute/Hour
// in this bench (a real ingester would have to follow the server's time zone for the hour).

type flowKey struct {
	t            uint32
	host, iface  string
	src, dst     [16]byte
	proto        uint8
	sport, dport uint16
	tunType      string
	tunID        uint32
}

type flowVal struct {
	packets, bytes, syn, ack, fin, rst uint64
	first, last                        int64
}

type trafficKey struct {
	t           uint32
	host, iface string
	vlan        uint16
	ipver       uint8
	proto       uint8
	dport       uint16
	tunType     string
	tunID       uint32
}

type sums struct{ packets, bytes uint64 }

// talkerKey is one distinct (source, destination port, destination address) tuple: the states
// uniqStateIf(dst_port, ip_proto IN (6, 17)) and uniqState(dst_addr) are built from them.
type talkerKey struct {
	t           uint32
	host, iface string
	src, dst    [16]byte
	dport       uint16
	hasPort     bool
}

type dnsKey struct {
	t           uint32
	host, iface string
	qname       string
	qtype       uint16
}

type dnsVal struct{ queries, responses, nxdomain uint64 }

// nameKey is one distinct (name, client) tuple of tls_sni (method "") and http_hosts.
type nameKey struct {
	t            uint32
	host, iface  string
	name, method string
	client       [16]byte
}

type dstKey struct {
	t     uint32
	dst   [16]byte
	proto uint8
}

// agg is a map from key to an index into dense slices: one hash lookup per row when the key is
// known, and the rows come out in first-seen order without iterating the map.
type agg[K comparable, V any] struct {
	idx  map[K]int32
	keys []K
	vals []V
}

func (a *agg[K, V]) at(k K) *V {
	if i, ok := a.idx[k]; ok {
		return &a.vals[i]
	}
	if a.idx == nil {
		a.idx = map[K]int32{}
	}
	a.idx[k] = int32(len(a.keys))
	a.keys = append(a.keys, k)
	var z V
	a.vals = append(a.vals, z)
	return &a.vals[len(a.vals)-1]
}

func (a *agg[K, V]) reset() {
	clear(a.idx)
	a.keys, a.vals = a.keys[:0], a.vals[:0]
}

// tiers is one table family's minute and hour aggregates.
type tiers[K comparable, V any] struct{ m, h agg[K, V] }

// rollupAgg holds a batch's aggregates; reset and reused for the next batch.
type rollupAgg struct {
	flows   tiers[flowKey, flowVal]
	traffic tiers[trafficKey, sums]
	talkers tiers[talkerKey, sums]
	dns     tiers[dnsKey, dnsVal]
	sni     tiers[nameKey, uint64]
	http    tiers[nameKey, uint64]
	dst1s   agg[dstKey, sums]
}

func (r *rollupAgg) reset() {
	r.flows.m.reset()
	r.flows.h.reset()
	r.traffic.m.reset()
	r.traffic.h.reset()
	r.talkers.m.reset()
	r.talkers.h.reset()
	r.dns.m.reset()
	r.dns.h.reset()
	r.sni.m.reset()
	r.sni.h.reset()
	r.http.m.reset()
	r.http.h.reset()
	r.dst1s.reset()
}

func flag(flags uint16, bit uint16, rate uint64) uint64 {
	if flags&bit != 0 {
		return rate
	}
	return 0
}

// add aggregates a batch into the minute tables and detect_dst_1s, then folds the minute rows
// into the hour tables (as the hour views read the minute views' blocks: far fewer rows).
func (r *rollupAgg) add(pkts []record.Packet) {
	for i := range pkts {
		p := &pkts[i]
		sec := uint32(p.TS / 1e9)
		min := sec - sec%60
		rate := uint64(p.SampleRate)
		bytes := uint64(p.PktLen) * rate

		f := r.flows.m.at(flowKey{t: min, host: p.Host, iface: p.Iface, src: p.SrcAddr, dst: p.DstAddr, proto: p.IPProto,
			sport: p.SrcPort, dport: p.DstPort, tunType: p.TunnelType, tunID: p.TunnelID})
		if f.packets == 0 || p.TS < f.first {
			f.first = p.TS
		}
		f.last = max(f.last, p.TS)
		f.packets += rate
		f.bytes += bytes
		f.syn += flag(p.TCPFlags, 0x02, rate)
		f.ack += flag(p.TCPFlags, 0x10, rate)
		f.fin += flag(p.TCPFlags, 0x01, rate)
		f.rst += flag(p.TCPFlags, 0x04, rate)

		t := r.traffic.m.at(trafficKey{t: min, host: p.Host, iface: p.Iface, vlan: p.VlanID, ipver: p.IPVersion, proto: p.IPProto,
			dport: p.DstPort, tunType: p.TunnelType, tunID: p.TunnelID})
		t.packets += rate
		t.bytes += bytes

		tk := talkerKey{t: min, host: p.Host, iface: p.Iface, src: p.SrcAddr, dst: p.DstAddr}
		if p.IPProto == 6 || p.IPProto == 17 { // uniqStateIf(dst_port, ip_proto IN (6, 17))
			tk.dport, tk.hasPort = p.DstPort, true
		}
		tl := r.talkers.m.at(tk)
		tl.packets += rate
		tl.bytes += bytes

		d := r.dst1s.at(dstKey{t: sec, dst: p.DstAddr, proto: p.IPProto})
		d.packets += rate
		d.bytes += bytes

		if p.DNSQName != "" {
			v := r.dns.m.at(dnsKey{t: min, host: p.Host, iface: p.Iface, qname: p.DNSQName, qtype: p.DNSQType})
			switch p.DNSIsResponse {
			case 0:
				v.queries += rate
			case 1:
				v.responses += rate
				if p.DNSRCode == 3 {
					v.nxdomain += rate
				}
			}
		}
		if p.TLSSNI != "" {
			*r.sni.m.at(nameKey{t: min, host: p.Host, iface: p.Iface, name: p.TLSSNI, client: p.SrcAddr}) += rate
		}
		if p.HTTPMethod != "" {
			*r.http.m.at(nameKey{t: min, host: p.Host, iface: p.Iface, name: p.HTTPHost, method: p.HTTPMethod, client: p.SrcAddr}) += rate
		}
	}
	hour := func(t uint32) uint32 { return t - t%3600 }
	for i, k := range r.flows.m.keys {
		v := r.flows.m.vals[i]
		k.t = hour(k.t)
		h := r.flows.h.at(k)
		if h.packets == 0 || v.first < h.first {
			h.first = v.first
		}
		h.last = max(h.last, v.last)
		h.packets, h.bytes = h.packets+v.packets, h.bytes+v.bytes
		h.syn, h.ack, h.fin, h.rst = h.syn+v.syn, h.ack+v.ack, h.fin+v.fin, h.rst+v.rst
	}
	for i, k := range r.traffic.m.keys {
		k.t = hour(k.t)
		h := r.traffic.h.at(k)
		h.packets, h.bytes = h.packets+r.traffic.m.vals[i].packets, h.bytes+r.traffic.m.vals[i].bytes
	}
	for i, k := range r.talkers.m.keys {
		k.t = hour(k.t)
		h := r.talkers.h.at(k)
		h.packets, h.bytes = h.packets+r.talkers.m.vals[i].packets, h.bytes+r.talkers.m.vals[i].bytes
	}
	for i, k := range r.dns.m.keys {
		v := r.dns.m.vals[i]
		k.t = hour(k.t)
		h := r.dns.h.at(k)
		h.queries, h.responses, h.nxdomain = h.queries+v.queries, h.responses+v.responses, h.nxdomain+v.nxdomain
	}
	for i, k := range r.sni.m.keys {
		k.t = hour(k.t)
		*r.sni.h.at(k) += r.sni.m.vals[i]
	}
	for i, k := range r.http.m.keys {
		k.t = hour(k.t)
		*r.http.h.at(k) += r.http.m.vals[i]
	}
}
