package collector

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/packetlake/packetlake/bpf"
)

func newTestJoin(t testing.TB, ns uint32) *receiverJoin {
	t.Helper()
	tr, err := bpf.LoadReceivers(0)
	if err != nil {
		t.Fatalf("load receiver tracer (needs root and kernel BTF): %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	rows, errs := receiverMetrics(prometheus.Labels{})
	return &receiverJoin{tracer: tr, netns: ns, rows: rows, errs: errs}
}

func flowKey(proto uint8, src, dst netip.AddrPort) bpf.FlowKey {
	return bpf.FlowKey{IpProto: proto, IpVersion: 4, SrcAddr: src.Addr().As16(), DstAddr: dst.Addr().As16(),
		SrcPort: src.Port(), DstPort: dst.Port()}
}

// TestReceiverJoinOrder: entries written into the kernel's map as receiver.c writes them are
// joined to flows in the documented order: the connected socket, then one bound to the
// destination, then a wildcard one, the collector's namespace first; another namespace's
// socket only when it is the only namespace with it (never by wildcard). The outcome counters
// follow.
func TestReceiverJoinOrder(t *testing.T) {
	const own, pod, pod2 = 4026531840, 4026532001, 4026532002
	j := newTestJoin(t, own)
	client := netip.MustParseAddrPort("192.0.2.7:40000")
	srv := netip.MustParseAddr("198.51.100.1")
	at := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(srv, p) }
	wild := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(netip.Addr{}, p) }
	none := netip.AddrPort{}
	put := func(ns uint32, proto uint8, remote, local netip.AddrPort, pid uint32, seen uint64) {
		if err := j.tracer.Put(bpf.NewRecvKey(ns, proto, remote, local), bpf.Receiver{PID: pid, Comm: fmt.Sprint("p", pid), SeenNs: seen}); err != nil {
			t.Fatal(err)
		}
	}
	put(own, 6, client, at(80), 101, 1)    // connected TCP
	put(own, 6, none, wild(80), 102, 1)    // its listener: never chosen over the connection
	put(own, 17, none, at(53), 103, 1)     // UDP bound to the address
	put(own, 17, none, wild(53), 104, 1)   // UDP wildcard: loses to the bound one
	put(own, 17, none, wild(123), 105, 1)  // UDP wildcard only
	put(pod, 6, client, at(8080), 106, 1)  // connected, in a pod's namespace only
	put(pod, 17, none, at(5353), 107, 1)   // bound, in two pods: ambiguous
	put(pod2, 17, none, at(5353), 108, 1)  //
	put(pod, 17, none, wild(9999), 109, 1) // wildcard in a pod: says nothing here
	put(own, 17, none, at(514), 110, 5)    // the key read again by another process:
	put(own, 17, none, at(514), 111, 9)    //
	if err := j.refresh(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  bpf.FlowKey
		pid  uint32
	}{
		{"connected", flowKey(6, client, at(80)), 101},
		{"listener, other client", flowKey(6, netip.MustParseAddrPort("192.0.2.8:1"), at(80)), 102},
		{"bound udp", flowKey(17, client, at(53)), 103},
		{"wildcard udp", flowKey(17, client, at(123)), 105},
		{"pod, connected", flowKey(6, client, at(8080)), 106},
		{"two pods", flowKey(17, client, at(5353)), 0},
		{"pod wildcard", flowKey(17, client, at(9999)), 0},
		{"newest", flowKey(17, client, at(514)), 111},
		{"nobody", flowKey(17, client, at(7)), 0},
		{"icmp", flowKey(1, client, at(0)), 0},
	} {
		var row FlowRow
		j.fill(&row, tc.key)
		if row.RecvPID != tc.pid || (tc.pid != 0 && row.RecvComm != fmt.Sprint("p", tc.pid)) {
			t.Errorf("%s: pid %d comm %q, want %d", tc.name, row.RecvPID, row.RecvComm, tc.pid)
		}
	}
	for outcome, want := range map[string]float64{recvFound: 6, recvUnknown: 2, recvAmbiguous: 1} {
		var m dto.Metric
		if err := j.rows.WithLabelValues(outcome).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("flow_receivers_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
}

// BenchmarkReceiverJoin: what the join costs an export per flow row, with the kernel's map
// holding as many sockets as there are flows (10,000, each flow's own connected socket):
// one read of the whole map plus one lookup per flow.
func BenchmarkReceiverJoin(b *testing.B) {
	const n = 10000
	j := newTestJoin(b, 1)
	keys := make([]bpf.FlowKey, n)
	srv := netip.MustParseAddr("198.51.100.1")
	for i := range n {
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000))
		local := netip.AddrPortFrom(srv, 443)
		if err := j.tracer.Put(bpf.NewRecvKey(1, 6, remote, local), bpf.Receiver{PID: uint32(i), Comm: "srv"}); err != nil {
			b.Fatal(err)
		}
		keys[i] = flowKey(6, remote, local)
	}
	b.ResetTimer()
	for range b.N {
		if err := j.refresh(); err != nil {
			b.Fatal(err)
		}
		for _, k := range keys {
			var row FlowRow
			j.fill(&row, k)
			if row.RecvComm != "srv" {
				b.Fatal("not joined")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/flow")
}

// TestReceiversConfig: --receivers needs what it joins to, a live interface's flow exports; a
// bad combination is refused at New with a message saying so.
func TestReceiversConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no flows topic", func(c *Config) { c.FlowsTopic = "" }},
		{"pcap", func(c *Config) { c.Pcap = "x.pcap" }},
		{"negative entries", func(c *Config) { c.ReceiverEntries = -1 }},
	} {
		cfg := DefaultConfig()
		cfg.Iface, cfg.Kafka.Brokers, cfg.Receivers = "lo", []string{"127.0.0.1:9"}, true
		tc.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "receiver") {
			t.Errorf("%s: %v, want a refusal naming receivers", tc.name, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Iface, cfg.Kafka.Brokers, cfg.Receivers = "lo", []string{"127.0.0.1:9"}, true
	if err := cfg.Validate(); err != nil {
		t.Errorf("receivers on a live interface with flows: %v", err)
	}
}
