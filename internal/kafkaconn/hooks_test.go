package kafkaconn

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/packetlake/packetlake/internal/testkit/logbuf"
)

// A client whose broker is not there says so through the component's logger and counts each
// failed attempt: before kafkaconn the collector's clients did neither.
func TestConnectErrorIsLoggedAndCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now

	var logs logbuf.Buffer
	m := NewMetrics("test_", nil)
	cl, err := Config{Brokers: []string{addr}}.NewClient(Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}

	if got := counterValue(t, m.ConnectErrors); got < 1 {
		t.Errorf("connect errors counted: %v, want at least 1", got)
	}
	if got := counterValue(t, m.Connects); got != 0 {
		t.Errorf("connects counted: %v, want 0", got)
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "unable to open connection to broker") ||
		!strings.Contains(out, "addr="+addr) || !strings.Contains(out, "component=kafka") {
		t.Errorf("log does not name the failed connection to %s:\n%s", addr, out)
	}

	// The counters are a prometheus.Collector the caller registers where it wants.
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 2 {
		t.Errorf("gathered %d families (%v), want 2", len(mfs), err)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var pb dto.Metric
	if err := c.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetCounter().GetValue()
}
