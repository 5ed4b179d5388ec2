// Package console is `packetlake console`: a web UI and a JSON API over the ClickHouse that
// holds packetlake's data. Four views (traffic, packets, anomalies, pipeline) are plain ES
// modules with Apache ECharts, embedded in the binary; every view's state is in its URL.
//
// Nothing the browser sends becomes SQL text: the traffic view's dimensions and the filter's
// columns come from an allowlist (dims.go), the filter is compiled to bound parameters
// (filter.go), and every query runs read-only with per-query limits (Limits). The traffic view
// reads the smallest table that answers exactly (chooser.go) and says which.
package console

import (
	"bufio"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

//go:embed assets
var assets embed.FS

// Config is what the console needs.
type Config struct {
	Querier Querier // the ClickHouse holding the database (HTTPQuerier, or the shared connection)
	Limits  Limits  // zero: DefaultLimits
	Logger  *slog.Logger
	Now     func() time.Time // nil: time.Now (tests pin it)
	// Metrics, when set, receives the console's metrics and is served at /metrics (behind the
	// same TLS and basic auth as the rest).
	Metrics *prometheus.Registry
}

// Server serves the console's pages and API.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	metrics *metrics
}

// New returns the console's handler.
func New(cfg Config) *Server {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), metrics: newMetrics(cfg.Metrics)}
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", metricsHandler(cfg.Metrics))
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(static)
	index := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	}
	for _, p := range []string{"GET /{$}", "GET /traffic", "GET /packets", "GET /anomalies", "GET /pipeline", "GET /tcp", "GET /drops", "GET /receivers"} {
		s.mux.HandleFunc(p, index)
	}
	s.mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.api("/api/v1/dimensions", func(ctx context.Context, v url.Values) (any, error) { return s.dimensions(), nil })
	s.api("/api/v1/traffic", func(ctx context.Context, v url.Values) (any, error) { return s.traffic(ctx, v) })
	s.api("/api/v1/complete", s.complete)
	s.api("/api/v1/flows", s.flows)
	s.api("/api/v1/anomalies", s.anomalies)
	s.api("/api/v1/pipeline", s.pipeline)
	s.api("/api/v1/tcp_health", s.tcpHealth)
	s.api("/api/v1/drops", s.drops)
	s.api("/api/v1/receivers", s.receivers)
	s.mux.HandleFunc("GET /api/v1/packets", s.metrics.wrap("packets", s.packetsHandler))
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Server) api(path string, h func(ctx context.Context, v url.Values) (any, error)) {
	s.mux.HandleFunc("GET "+path, s.metrics.wrap(strings.TrimPrefix(path, "/api/v1/"), func(w http.ResponseWriter, r *http.Request) {
		out, err := h(r.Context(), r.URL.Query())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if t, ok := out.(*trafficResponse); ok {
			w.Header().Set("X-Packetlake-Table", t.Table)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.Encode(out)
	}))
}

// fail answers an error: 400 for a bad request, 422 for a query ClickHouse refused for its
// size (narrow it), 502 when ClickHouse failed or cannot be reached.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusBadGateway, err.Error()
	var br *BadRequest
	switch {
	case errors.As(err, &br):
		status = http.StatusBadRequest
	case errors.Is(err, context.Canceled):
		return
	default:
		if m, ok := limitError(err); ok {
			status, msg = http.StatusUnprocessableEntity, m+": narrow the time range, the filter or the grouping"
		}
		s.cfg.Logger.Warn("console query failed", "path", r.URL.Path, "status", status, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]string{"error": msg})
}

// queryRows runs a FORMAT JSONEachRow statement under the limits and calls fn per row.
func (s *Server) queryRows(ctx context.Context, sql string, params map[string]string, fn func([]byte) error) error {
	settings := s.cfg.Limits.settings()
	settings["output_format_json_quote_64bit_integers"] = "0"
	settings["output_format_json_quote_denormals"] = "0"
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Limits.MaxExecutionTime+10*time.Second)
	defer cancel()
	body, err := s.cfg.Querier.Query(ctx, sql, params, settings)
	if err != nil {
		return err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		// An error after the first rows arrives in the body.
		if strings.HasPrefix(string(line), "Code: ") {
			return &Error{Code: atoiCode(string(line)), Message: string(line)}
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	return sc.Err()
}

func atoiCode(s string) int {
	var c int
	if m := codeRE.FindStringSubmatch(s); m != nil {
		for _, ch := range m[1] {
			c = c*10 + int(ch-'0')
		}
	}
	return c
}

type dimInfo struct {
	dimension
	Operators []string `json:"operators"`
}

func (s *Server) dimensions() []dimInfo {
	var out []dimInfo
	for _, d := range dimensions {
		di := dimInfo{dimension: d}
		if !d.GroupOnly {
			di.Operators = operators(d.Kind)
		}
		out = append(out, di)
	}
	return out
}
