package console

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/tlscerts"
)

// TLS and basic auth come from an exporter-toolkit web config file, as for Prometheus exporters.
func TestServeTLSAndBasicAuth(t *testing.T) {
	webConfig, caFile := tlscerts.WebConfig(t, "console", "noc", "s3cret")

	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Listen{Addr: "127.0.0.1:0", WebConfigFile: webConfig}, New(Config{}), nil, func(u string) { ready <- u })
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("url %s, want https on loopback", url)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	get := func(user, pass string) int {
		req, _ := http.NewRequest("GET", url+"api/v1/dimensions", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("", ""); code != 401 {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if code := get("noc", "wrong"); code != 401 {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code := get("noc", "s3cret"); code != 200 {
		t.Errorf("right password: %d, want 200", code)
	}
	plain, err := http.Get(strings.Replace(url, "https", "http", 1) + "healthz")
	if err == nil {
		if plain.StatusCode == 200 {
			t.Errorf("plain http answered 200")
		}
		plain.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after cancel: %v", err)
	}
	if DefaultListen != "127.0.0.1:8080" {
		t.Errorf("default listen %s, want loopback", DefaultListen)
	}
}
