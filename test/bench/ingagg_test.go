package bench

import (
	"slices"
	"testing"
	"time"

	"github.com/packetlake/packetlake/record"
)

// Issue #18's untried lever, priced here and nowhere in the product: the ingester aggregates the
// batch it already holds and writes every rollup itself, so no materialized view runs on the
// packets insert. rollupAgg is that aggregation, the same definitions as the views of migrations
// 0100, 0101, 0200, 0201, 0401, 0600 and 0903 (counts scaled by sample_rate, minute and hour tiers,
// detect_dst_1s per second). For the uniq columns Go keeps the distinct (key, value) tuples with
// their sums, and ClickHouse builds the states from them (ingagg_insert_test.go): Go cannot
// write ClickHouse's uniq state. Times are UTC seconds, as the server's toStartOfMinute/Hour
// in this bench (a real ingester would have to follow the server's time zone for the hour).

type flowKey struct {
	t            uint32
	hi           uint16 // (host, iface): dims.hostIfaces
	src, dst     [16]byte
	proto        uint8
	sport, dport uint16
	tt           uint8 // tunnel_type: dims.tunTypes
	tunID        uint32
}

type fineKey struct {
	flowKey
	vlan  uint16
	ipver uint8
}

type flowVal struct {
	packets, bytes, syn, ack, fin, rst uint64
	first, last                        int64
}

type trafficKey struct {
	t     uint32
	hi    uint16
	vlan  uint16
	ipver uint8
	proto uint8
	dport uint16
	tt    uint8
	tunID uint32
}

type sums struct{ packets, bytes uint64 }

// talkerKey is one distinct (source, destination port, destination address) tuple: the states
// uniqStateIf(dst_port, ip_proto IN (6, 17)) and uniqState(dst_addr) are built from them.
type talkerKey struct {
	t        uint32
	hi       uint16
	src, dst [16]byte
	dport    uint16
	hasPort  bool
}

type dnsKey struct {
	t     uint32
	hi    uint16
	qname string
	qtype uint16
}

type dnsVal struct{ queries, responses, nxdomain uint64 }

// nameKey is one distinct (name, client) tuple of tls_sni (method "") and http_hosts.
type nameKey struct {
	t            uint32
	hi           uint16 // (host, iface): dims.hostIfaces
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
	// fine is the one map every packet goes through besides dst1s: a flow of one minute with
	// its VLAN and IP version, from which flows, traffic and talkers are folded (4 hash
	// lookups per packet became 2: BenchmarkRollupAggregate). Since migration 0903 its rows
	// are flows_1m's (vlan_id and ip_version are flows_1m keys); flowsH is flows_1h's.
	fine    agg[fineKey, flowVal]
	flowsH  agg[flowKey, flowVal]
	traffic tiers[trafficKey, sums]
	talkers tiers[talkerKey, sums]
	dns     tiers[dnsKey, dnsVal]
	sni     tiers[nameKey, uint64]
	http    tiers[nameKey, uint64]
	dst1s   agg[dstKey, sums]
	dims    dims
}

// dims interns a batch's few (host, iface) pairs and tunnel types, so that the keys hold small
// numbers instead of strings: hashing the strings was 40 % of the aggregation's CPU (pprof of
// BenchmarkRollupAggregate). A batch comes from a few collectors: a linear search, after a
// check of the previous row's strings, is enough.
type dims struct {
	hostIfaces        [][2]string
	tunTypes          []string
	last              [2]string
	lastTun           string
	lastHI            uint16
	lastTT            uint8
	haveLast, haveTun bool
}

func (d *dims) hostIface(host, iface string) uint16 {
	if d.haveLast && host == d.last[0] && iface == d.last[1] {
		return d.lastHI
	}
	k := [2]string{host, iface}
	i := slices.Index(d.hostIfaces, k)
	if i < 0 {
		i, d.hostIfaces = len(d.hostIfaces), append(d.hostIfaces, k)
	}
	d.last, d.lastHI, d.haveLast = k, uint16(i), true
	return d.lastHI
}

func (d *dims) tunnel(t string) uint8 {
	if d.haveTun && t == d.lastTun {
		return d.lastTT
	}
	i := slices.Index(d.tunTypes, t)
	if i < 0 {
		i, d.tunTypes = len(d.tunTypes), append(d.tunTypes, t)
	}
	d.lastTun, d.lastTT, d.haveTun = t, uint8(i), true
	return d.lastTT
}

func (r *rollupAgg) reset() {
	r.fine.reset()
	r.flowsH.reset()
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
	r.dims = dims{hostIfaces: r.dims.hostIfaces[:0], tunTypes: r.dims.tunTypes[:0]}
}

func flag(flags uint16, bit uint16, rate uint64) uint64 {
	if flags&bit != 0 {
		return rate
	}
	return 0
}

// add aggregates a batch into the minute tables and detect_dst_1s.
func (r *rollupAgg) add(pkts []record.Packet) {
	for i := range pkts {
		p := &pkts[i]
		sec := uint32(p.TS / 1e9)
		min := sec - sec%60
		hi, tt := r.dims.hostIface(p.Host, p.Iface), r.dims.tunnel(p.TunnelType)
		rate := uint64(p.SampleRate)
		bytes := uint64(p.PktLen) * rate

		f := r.fine.at(fineKey{flowKey{t: min, hi: hi, src: p.SrcAddr, dst: p.DstAddr, proto: p.IPProto,
			sport: p.SrcPort, dport: p.DstPort, tt: tt, tunID: p.TunnelID}, p.VlanID, p.IPVersion})
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

		d := r.dst1s.at(dstKey{t: sec, dst: p.DstAddr, proto: p.IPProto})
		d.packets += rate
		d.bytes += bytes

		if p.DNSQName != "" {
			v := r.dns.m.at(dnsKey{t: min, hi: hi, qname: p.DNSQName, qtype: p.DNSQType})
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
			*r.sni.m.at(nameKey{t: min, hi: hi, name: p.TLSSNI, client: p.SrcAddr}) += rate
		}
		if p.HTTPMethod != "" {
			*r.http.m.at(nameKey{t: min, hi: hi, name: p.HTTPHost, method: p.HTTPMethod, client: p.SrcAddr}) += rate
		}
	}
	// flows, traffic and talkers from the fine rows: every packet of one fine row has the same
	// flow, traffic key and talker tuple.
	for i, k := range r.fine.keys {
		v := &r.fine.vals[i]
		t := r.traffic.m.at(trafficKey{t: k.t, hi: k.hi, vlan: k.vlan, ipver: k.ipver, proto: k.proto, dport: k.dport, tt: k.tt, tunID: k.tunID})
		t.packets, t.bytes = t.packets+v.packets, t.bytes+v.bytes
		tk := talkerKey{t: k.t, hi: k.hi, src: k.src, dst: k.dst}
		if k.proto == 6 || k.proto == 17 { // uniqStateIf(dst_port, ip_proto IN (6, 17))
			tk.dport, tk.hasPort = k.dport, true
		}
		tl := r.talkers.m.at(tk)
		tl.packets, tl.bytes = tl.packets+v.packets, tl.bytes+v.bytes
	}
}

// mergeFlow adds v's counts into f (f empty: f becomes v).
func mergeFlow(f, v *flowVal) {
	if f.packets == 0 || v.first < f.first {
		f.first = v.first
	}
	f.last = max(f.last, v.last)
	f.packets, f.bytes = f.packets+v.packets, f.bytes+v.bytes
	f.syn, f.ack, f.fin, f.rst = f.syn+v.syn, f.ack+v.ack, f.fin+v.fin, f.rst+v.rst
}

// foldHours folds the minute rows into the hour tables, as the hour views read the minute
// views' blocks: far fewer rows than packets.
func (r *rollupAgg) foldHours() {
	hour := func(t uint32) uint32 { return t - t%3600 }
	for i, k := range r.fine.keys {
		v := r.fine.vals[i]
		k.t = hour(k.t)
		mergeFlow(r.flowsH.at(k.flowKey), &v)
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

// BenchmarkRollupAggregate is the Go side of ingagg alone, without ClickHouse: ns per packet to
// aggregate a 100k-row batch of the benchmarks' mix into every rollup and encode the inserts
// (sub-benchmarks: minute tables only; every table but detect_recent; every table).
func BenchmarkRollupAggregate(b *testing.B) {
	_, _, pkts := frames(100_000, 1000, 4, time.Now().UnixNano())
	for _, c := range []struct {
		name          string
		hours, recent bool
	}{{"minute-only", false, false}, {"no-detect-recent", true, false}, {"every-table", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			var r rollupAgg
			var rows int
			for b.Loop() {
				r.reset()
				r.add(pkts)
				if c.hours {
					r.foldHours()
				}
				rows = 0
				for _, in := range r.inserts("db", pkts, c.hours, c.recent) {
					rows += in.rows
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pkts)), "ns/packet")
			b.ReportMetric(float64(rows), "rollup-rows/batch")
		})
	}
}
