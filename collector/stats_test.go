package collector

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/record"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Stats messages reach the stats topic with counters that add up, and Prometheus serves the
// same numbers.
func TestStatsTopic(t *testing.T) {
	k := startKafka(t)
	cfg := testConfig(k.Addr())
	cfg.StatsInterval = 200 * time.Millisecond
	cfg.FrameMaxAge = 20 * time.Millisecond
	reg := prometheus.NewRegistry()
	c, err := New(cfg, Dependencies{Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	c.noAttach = true
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	pkts, _ := capturePackets(t, "tcpdump/dns_udp.pcap")
	const n = 500
	inject(t, c, pkts, n)

	cons := newConsumer(t, k.Addr(), cfg.StatsTopic)
	var last record.Stats
	recs := cons.until(10*time.Second, func(recs []*kgo.Record) bool {
		if len(recs) == 0 {
			return false
		}
		var err error
		if last, err = record.DecodeStats(recs[len(recs)-1].Value); err != nil {
			t.Fatal(err)
		}
		return last.RecordsAcked == n
	})
	if last.RecordsAcked != n {
		t.Fatalf("no stats message with all %d records acked in %d messages; last %+v", n, len(recs), last)
	}
	for i, r := range recs {
		s, err := record.DecodeStats(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != record.StatsVersion || s.Host != "test-host" || s.Iface != "lo" || s.CollectorID != c.ID() || s.Mode != "xdp" {
			t.Errorf("message %d identity: %+v", i, s)
		}
		if string(r.Key) != "test-host/lo" {
			t.Errorf("message %d key %q", i, r.Key)
		}
		// The identities of the Stats doc, as ≥ while records flow.
		if s.KernelSeen != s.KernelEmitted+s.KernelRingFull+s.KernelSampledOut {
			t.Errorf("message %d: seen %d != emitted %d + ring_full %d + sampled_out %d", i, s.KernelSeen, s.KernelEmitted, s.KernelRingFull, s.KernelSampledOut)
		}
		if s.KernelEmitted < s.SamplesRead+s.SamplesMalformed {
			t.Errorf("message %d: emitted %d < read %d + malformed %d", i, s.KernelEmitted, s.SamplesRead, s.SamplesMalformed)
		}
		if s.SamplesRead < s.RecordsProduced+s.RecordsShed || s.RecordsProduced < s.RecordsAcked+s.RecordsFailed {
			t.Errorf("message %d: read %d produced %d shed %d acked %d failed %d", i, s.SamplesRead, s.RecordsProduced, s.RecordsShed, s.RecordsAcked, s.RecordsFailed)
		}
		if s.ClockOffsetNs == 0 && s.SamplesRead > 0 {
			t.Errorf("message %d: live mode with clock offset 0", i)
		}
	}
	// Once all is acked and the ring is empty, the identities are equalities.
	if last.KernelSeen != n || last.KernelEmitted != n || last.SamplesRead != n || last.RingPendingBytes != 0 ||
		last.RecordsProduced != n || last.RecordsShed != 0 || last.SamplesMalformed != 0 {
		t.Errorf("settled stats do not add up to %d: %+v", n, last)
	}
	if _, ok := last.KernelParseErrors[""]; ok {
		t.Errorf("reason code 0 reported as a parse error: %v", last.KernelParseErrors)
	}

	// Prometheus: the same numbers, labelled host and iface, over HTTP too.
	if got := metricValue(t, reg, "packetlake_collector_records_acked_total"); got != n {
		t.Errorf("records_acked_total %v, want %d", got, n)
	}
	if got := metricValue(t, reg, "packetlake_collector_kernel_flow_counted_total"); got != n {
		t.Errorf("kernel_flow_counted_total %v, want %d", got, n)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) // as packetlake serves it
	defer srv.Close()
	body := httpGet(t, srv.URL+"/metrics")
	if !strings.Contains(body, `packetlake_collector_kernel_emitted_total{host="test-host",iface="lo"} 500`) {
		t.Errorf("/metrics lacks kernel_emitted_total 500:\n%s", body)
	}
	if err := c.Ready(); err != nil { // packetlake's /healthz
		t.Errorf("Ready() = %v", err)
	}

	// Stop publishes a final message.
	before := len(recs)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	recs = cons.until(5*time.Second, func(r []*kgo.Record) bool { return len(r) > before })
	if len(recs) <= before {
		t.Errorf("no final stats message at Stop")
	}
}

// metricValue reads one single-series counter or gauge from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetCounter().GetValue() + mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
