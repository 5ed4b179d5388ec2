package detector

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/testkit/logbuf"
)

// icmpFloods are n ICMP floods to 10.50.0.1..n, captured in the 8 s before {t}.
func icmpFloods(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("SELECT {t} - toIntervalMillisecond(1000 + number * 2), toIPv6('10.9.50.%d'), toIPv6('10.50.0.%d'), 1, 0, 0, 0, 8, '', 0, 1, 98 FROM numbers(2500)", i, i))
	}
	return out
}

// TestWebhookDeliversWithRetries: a real HTTP server that fails its first two requests gets
// every new anomaly once, as JSON, with the id of its row.
func TestWebhookDeliversWithRetries(t *testing.T) {
	db := migratedDB(t)
	var mu sync.Mutex
	calls := 0
	var got []Anomaly
	const secret = "webhook-hmac-key"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		var a Anomaly
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &a); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body %q: %v", b, err)
		}
		// What a receiver does: recompute the HMAC over the exact body and compare.
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(b)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if sig := r.Header.Get(SignatureHeader); !hmac.Equal([]byte(sig), []byte(want)) {
			t.Errorf("%s = %q, want %q", SignatureHeader, sig, want)
		}
		got = append(got, a)
	}))
	defer srv.Close()

	insertCrafted(t, db, time.Now(), append(icmpFloods(2), crafted("syn_flood 10.0.0.1:80")...))
	cfg := testConfig(db)
	cfg.Webhook, cfg.Interval = srv.URL+"/hooks/T0K3N", 200*time.Millisecond
	cfg.WebhookSecret, cfg.WebhookCAFile = secret, serverCA(t, srv)
	d := newDetector(t, cfg, prometheus.NewRegistry())
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.Stop()
	rows := anomalies(t, db)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || len(rows) != 3 {
		t.Fatalf("webhook got %d anomalies, table has %d (%v), want 3 and 3", len(got), len(rows), kindsAndSubjects(rows))
	}
	for _, r := range rows {
		i := slices.IndexFunc(got, func(a Anomaly) bool { return a.ID == r.ID })
		if i < 0 {
			t.Errorf("row %s (id %s) was not delivered", r, r.ID)
			continue
		}
		a := got[i]
		var ev map[string]any
		if a.Kind != r.Kind || a.Subject != r.Subject || a.Database != db || json.Unmarshal(a.Evidence, &ev) != nil || ev["addresses"] == nil {
			t.Errorf("delivered %+v for row %s", a, r)
		}
	}
	if v := counterValue(d.m.webhook.WithLabelValues("delivered")); v != 3 {
		t.Errorf("delivered %v, want 3", v)
	}
	if v := counterValue(d.m.webhookRetries); v != 2 {
		t.Errorf("retries %v, want 2", v)
	}
}

// TestWebhookNeverBlocksDetection: a webhook that never answers neither slows the cycles nor
// holds the anomalies back; what does not fit its queue is dropped and counted, and Stop
// returns within the webhook timeout.
func TestWebhookNeverBlocksDetection(t *testing.T) {
	db := migratedDB(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	insertCrafted(t, db, time.Now(), icmpFloods(6))
	cfg := testConfig(db)
	cfg.Webhook, cfg.Interval, cfg.WebhookAllowHTTP = srv.URL, 100*time.Millisecond, true
	cfg.WebhookTimeout, cfg.WebhookRetries, cfg.WebhookQueue = 500*time.Millisecond, 2, 1
	d := newDetector(t, cfg, prometheus.NewRegistry())
	start := time.Now()
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Detection must go on while the webhook hangs: wait (bounded) for cycles to pass 8. A
	// webhook that held detection back would stall the count at the first cycle or two, however
	// long we waited; waiting on the count, not a fixed sleep, keeps a loaded machine from
	// failing a test that is about blocking, not speed.
	deadline := time.Now().Add(30 * time.Second)
	for counterValue(d.m.cycles) < 8 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cycles := counterValue(d.m.cycles)
	rows := anomalies(t, db)
	stopStart := time.Now()
	d.Stop()
	stopTook := time.Since(stopStart)
	t.Logf("%v cycles in %v, %d anomalies written, Stop took %v", cycles, stopStart.Sub(start), len(rows), stopTook)
	if len(rows) != 6 {
		t.Errorf("%d anomalies written while the webhook hung, want 6", len(rows))
	}
	if cycles < 8 {
		t.Errorf("only %v cycles in 30 s at a 100 ms interval while the webhook hung: it held detection back", cycles)
	}
	if dropped := counterValue(d.m.webhook.WithLabelValues("dropped")); dropped < 4 {
		t.Errorf("dropped %v, want at least 4 (6 anomalies, one in delivery, one queued)", dropped)
	}
	if stopTook > 3*cfg.WebhookTimeout {
		t.Errorf("Stop took %v with a hung webhook (timeout %v)", stopTook, cfg.WebhookTimeout)
	}
}

// serverCA writes the test server's certificate as the CA file the webhook trusts.
func serverCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webhook-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWebhookHTTPSOnlyAndRedacted: an http:// webhook is refused unless allowed; the URL's
// secret parts never reach an error or a log line, including a failed delivery's; a webhook
// whose certificate the detector does not trust gets nothing; redirects are not followed.
func TestWebhookHTTPSOnlyAndRedacted(t *testing.T) {
	const token = "s3cr3t-T0K3N"
	cfg := testConfig("unused")
	cfg.Webhook = "http://hooks.example.com/services/" + token + "?key=" + token
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "plain http") || strings.Contains(err.Error(), token) {
		t.Fatalf("http webhook: %v, want a refusal that does not show the token", err)
	}
	cfg.WebhookAllowHTTP = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("http webhook allowed explicitly: %v", err)
	}
	cfg.Webhook = "::not a url " + token
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("unparsable webhook: %v", err)
	}
	if got := RedactURL("https://user:" + token + "@hooks.example.com:8443/x/" + token); got != "https://hooks.example.com:8443/(redacted)" {
		t.Errorf("RedactURL = %q", got)
	}

	var posts int
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		mu.Unlock()
		http.Redirect(w, r, "http://elsewhere.example/"+token, http.StatusFound)
	}))
	defer srv.Close()
	var logs logbuf.Buffer
	m := newMetrics(prometheus.NewRegistry())
	for _, c := range []struct{ name, ca string }{{"trusted, redirecting", serverCA(t, srv)}, {"untrusted", ""}} {
		name, ca := c.name, c.ca
		cfg := testConfig("unused")
		cfg.Webhook, cfg.WebhookCAFile, cfg.WebhookRetries = srv.URL+"/services/"+token, ca, 0
		h, err := newWebhook(cfg, slog.New(slog.NewTextHandler(&logs, nil)), m)
		if err != nil {
			t.Fatal(err)
		}
		h.deliver(t.Context(), []byte(`{}`))
		mu.Lock()
		n := posts
		mu.Unlock()
		if n != 1 {
			t.Errorf("%s: %d requests in all, want exactly the trusted one (no redirect followed)", name, n)
		}
	}
	out := logs.String()
	if strings.Count(out, "webhook delivery failed") != 2 || strings.Contains(out, token) || !strings.Contains(out, "/(redacted)") {
		t.Errorf("failed deliveries' log lines, want two without the token:\n%s", out)
	}
	if !strings.Contains(out, "302") || !strings.Contains(out, "certificate") {
		t.Errorf("want the redirect answered as a failure and the untrusted certificate named:\n%s", out)
	}
}
