package ingester

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/testkit/tlscerts"
	"github.com/packetlake/packetlake/internal/tlsconf"
)

// TestIngestOverTLS: frames through the real Kafka land in ClickHouse with every connection of
// the ingester (migrations, batch ranges, the packets writer) going through a TLS-terminating
// proxy, for both writers.
func TestIngestOverTLS(t *testing.T) {
	px := tlscerts.Start(t, sharedCH.TCPAddr(), sharedCH.HTTPAddr())
	for _, writer := range []string{WriterArrowHTTP, WriterNative} {
		t.Run(writer, func(t *testing.T) {
			topic, stats, group, db := names("ingesttls")
			createTopic(t, topic, 2)
			createTopic(t, stats, 1)
			cfg := testConfig(sharedCH, topic, stats, group, db, writer)
			cfg.ClickHouse.Addr, cfg.ClickHouse.HTTPAddr = px.Native, px.HTTP
			cfg.ClickHouse.TLS = tlsconf.Files{Enable: true, CAFile: px.CAFile}
			startIngester(t, cfg)

			const frames, perFrame = 5, 200
			s := newStream("tls-host", 4242)
			var fs [][]byte
			for range frames {
				fs = append(fs, s.frame(perFrame))
			}
			produce(t, producer(t), topic, "tls-host", fs...)
			// Counted over plaintext, directly: what the TLS path wrote.
			waitRows(t, chConn(t, sharedCH.TCPAddr()), db, s.sent(), time.Minute)
		})
	}
}

// TestIngesterTLSUntrusted: without the proxy's CA the ingester cannot even migrate.
func TestIngesterTLSUntrusted(t *testing.T) {
	px := tlscerts.Start(t, sharedCH.TCPAddr(), sharedCH.HTTPAddr())
	topic, stats, group, db := names("ingesttlsbad")
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
	cfg.ClickHouse.Addr, cfg.ClickHouse.HTTPAddr = px.Native, px.HTTP
	cfg.ClickHouse.TLS = tlsconf.Files{Enable: true}
	ing, err := New(cfg, Dependencies{Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = ing.Start(ctx)
	if err == nil {
		ing.Stop()
		t.Fatal("Start over TLS without the CA succeeded")
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("Start over TLS without the CA: got %v, want an unknown-authority error", err)
	}
}
