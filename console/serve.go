package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"gopkg.in/yaml.v3"
)

// Listen is where and how the console serves.
type Listen struct {
	Addr string // host:port; 127.0.0.1:8080 by default
	// WebConfigFile is a Prometheus exporter-toolkit web configuration (TLS, basic auth with
	// bcrypt hashes, headers): https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
	WebConfigFile string
}

// DefaultListen is loopback only: the console shows every packet header, so it is opened to
// a network on purpose (--listen) and then with --web-config-file for TLS and basic auth.
const DefaultListen = "127.0.0.1:8080"

// Serve serves h until ctx ends. ready is called with the console's URL once it listens.
func Serve(ctx context.Context, l Listen, h http.Handler, log *slog.Logger, ready func(url string)) error {
	if l.Addr == "" {
		l.Addr = DefaultListen
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	scheme := "http"
	if l.WebConfigFile != "" {
		if err := web.Validate(l.WebConfigFile); err != nil {
			return fmt.Errorf("--web-config-file %s: %w", l.WebConfigFile, err)
		}
		b, err := os.ReadFile(l.WebConfigFile)
		if err != nil {
			return err
		}
		var wc struct {
			TLS *struct {
				Cert string `yaml:"cert_file"`
			} `yaml:"tls_server_config"`
		}
		if err := yaml.Unmarshal(b, &wc); err != nil {
			return fmt.Errorf("--web-config-file %s: %w", l.WebConfigFile, err)
		}
		if wc.TLS != nil && wc.TLS.Cert != "" {
			scheme = "https"
		}
	}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return fmt.Errorf("console: listen on %s: %w", l.Addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	url := fmt.Sprintf("%s://%s/", scheme, net.JoinHostPort(host, port))
	no := false
	flags := &web.FlagConfig{WebListenAddresses: &[]string{l.Addr}, WebSystemdSocket: &no, WebConfigFile: &l.WebConfigFile}
	errc := make(chan error, 1)
	go func() { errc <- web.Serve(ln, srv, flags, log) }()
	if ready != nil {
		ready(url)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
