package detector

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/testkit/tlscerts"
	"github.com/packetlake/packetlake/internal/tlsconf"
)

// TestDetectorOverTLS: a detection cycle queries and writes its anomaly over https through a
// TLS-terminating proxy in front of the test ClickHouse; without the proxy's CA it fails.
func TestDetectorOverTLS(t *testing.T) {
	px := tlscerts.Start(t, env.ClickHouse.TCPAddr(), env.ClickHouse.HTTPAddr())
	db := migratedDB(t)
	now := time.Now().UTC().Truncate(time.Second)
	c := craftedCases[0]
	insertCrafted(t, db, now, c.sql)

	cfg := testConfig(db)
	cfg.ClickHouse.HTTPAddr = px.HTTP
	cfg.ClickHouse.TLS = tlsconf.Files{Enable: true, CAFile: px.CAFile}
	d := newDetector(t, cfg, prometheus.NewRegistry())
	got, err := d.cycle(t.Context(), now)
	if err != nil {
		t.Fatalf("cycle over TLS: %v", err)
	}
	if len(got) != 1 || got[0].Kind+" "+got[0].Subject != c.want {
		t.Fatalf("cycle over TLS reported %v, want %s", got, c.want)
	}
	if ks := kindsAndSubjects(anomalies(t, db)); len(ks) != 1 || ks[0] != c.want {
		t.Fatalf("anomalies table: %v, want [%s]", ks, c.want)
	}

	cfg.ClickHouse.TLS.CAFile = ""
	d2 := newDetector(t, cfg, prometheus.NewRegistry())
	if _, err := d2.cycle(t.Context(), now); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("cycle over TLS without the CA: got %v, want a certificate error", err)
	}
}
