package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/tlscerts"
)

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startReadyDaemon runs a ready fake daemon behind runDaemon until the test ends.
func startReadyDaemon(t *testing.T, mf metricsFlags) {
	t.Helper()
	d := newFakeDaemon()
	close(d.release)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- runDaemon(ctx, d, nil, "signal", mf, newRegistry(), slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-result; err != nil {
			t.Errorf("runDaemon: %v", err)
		}
	})
	<-d.starting
}

// TestMetricsWebConfigTLSAndBasicAuth: with an exporter-toolkit web config, /metrics and /healthz
// speak TLS only (a real handshake against the configured certificate; plain HTTP and an
// untrusting client fail) and answer 401 without the right basic-auth credentials.
func TestMetricsWebConfigTLSAndBasicAuth(t *testing.T) {
	webConfig, caFile := tlscerts.WebConfig(t, "packetlake-metrics", "prometheus", "s3cret")

	addr := freeAddr(t)
	startReadyDaemon(t, metricsFlags{Addr: addr, WebConfig: webConfig})

	caPEM, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	var handshake tls.ConnectionState
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(path, user, pass string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.TLS == nil {
			t.Fatalf("GET %s: no TLS", path)
		}
		handshake = *resp.TLS
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		if code, _ := do(path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d, want 401", path, code)
		}
		if code, _ := do(path, "prometheus", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password: %d, want 401", path, code)
		}
	}
	if code, body := do("/metrics", "prometheus", "s3cret"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics with credentials: %d %.100q", code, body)
	}
	if code, body := do("/healthz", "prometheus", "s3cret"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz with credentials: %d %q", code, body)
	}
	if !handshake.HandshakeComplete || handshake.PeerCertificates[0].Subject.CommonName != "packetlake-metrics" {
		t.Errorf("TLS handshake: complete %v, peer %v", handshake.HandshakeComplete, handshake.PeerCertificates[0].Subject)
	}
	// Plain HTTP gets nothing from the TLS port, and a client that does not trust the CA fails
	// the handshake.
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "go_goroutines") {
			t.Errorf("plain HTTP to the TLS port: %d %.100q", resp.StatusCode, b)
		}
	}
	_, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + addr + "/healthz")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("client without the CA: %v, want an unknown-authority error", err)
	}
}

// TestMetricsWebConfigRejected: a web config that does not parse, or one without an address to
// serve, fails the command before the daemon starts.
func TestMetricsWebConfigRejected(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "web.yaml")
	os.WriteFile(bad, []byte("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_fil: x\n"), 0o600)
	for name, mf := range map[string]metricsFlags{
		"bad file":   {Addr: freeAddr(t), WebConfig: bad},
		"no address": {WebConfig: bad},
	} {
		d := newFakeDaemon()
		close(d.release)
		err := runDaemon(context.Background(), d, nil, "signal", mf, newRegistry(), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "web-config") {
			t.Errorf("%s: %v, want an error naming --web-config", name, err)
		}
		select {
		case <-d.starting:
			t.Errorf("%s: the daemon started", name)
		default:
		}
	}
}

// TestMetricsServerTimeouts: a client that sends half a request header is disconnected after
// ReadHeaderTimeout instead of holding a connection (and a goroutine) forever.
func TestMetricsServerTimeouts(t *testing.T) {
	addr := freeAddr(t)
	startReadyDaemon(t, metricsFlags{Addr: addr})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(metricsReadHeaderTimeout + 10*time.Second))
	_, err = io.ReadAll(conn)
	took := time.Since(start)
	if err != nil || took < metricsReadHeaderTimeout-time.Second || took > metricsReadHeaderTimeout+5*time.Second {
		t.Errorf("half a header: connection ended after %s (err %v), want it closed after ReadHeaderTimeout %s", took, err, metricsReadHeaderTimeout)
	}
}
