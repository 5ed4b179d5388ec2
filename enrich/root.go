// Package enrich says where traffic comes from, at query time: it loads MaxMind-format GeoIP
// databases (country, city, ASN) into ClickHouse tables behind ip_trie dictionaries, again
// whenever a file changes, and keeps passive_dns, the names seen for each address in DNS
// answers, TLS SNI and HTTP Host, by a periodic INSERT ... SELECT over the newest packets.
// Reports and the console call dictGet on the dictionaries; the packets table and the ingest
// path are untouched. One replica per database.
package enrich

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/lifecycle"
)

// Dependencies are what an Enricher uses but does not own.
type Dependencies struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nowhere
	Now        func() time.Time      // nil: time.Now
}

// Enricher runs the GeoIP file checks and the passive DNS cycles.
type Enricher struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	m       *metrics
	ch      *chconn.Client
	sources []*geoSource
	pdns    passiveDNS

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	phase    lifecycle.Phase
}

// New checks cfg; nothing is contacted before Start.
func New(cfg Config, deps Dependencies) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	ch, err := cfg.ClickHouse.Client(
		chconn.Transport(func(t *http.Transport) { t.MaxIdleConnsPerHost = 4 }),
		chconn.Settings(map[string]string{
			"session_timezone":   "UTC",
			"max_execution_time": strconv.Itoa(max(1, int(cfg.QueryTimeout.Seconds()))),
		}))
	if err != nil {
		return nil, err
	}
	e := &Enricher{cfg: cfg, log: deps.Logger, now: deps.Now, m: newMetrics(deps.Registerer), ch: ch}
	for _, kind := range geoKinds {
		p := *cfg.path(kind)
		if p == "" {
			continue
		}
		tables := []string{kind}
		if kind == "city" && cfg.GeoIPCountry == "" {
			tables = append(tables, "country")
		}
		e.sources = append(e.sources, &geoSource{kind: kind, path: p, tables: tables})
	}
	return e, nil
}

// Start checks the schema, loads the GeoIP files that changed since the last load (a corrupt
// one is logged and counted, not fatal: the previous load stays) and starts the loops.
func (e *Enricher) Start(ctx context.Context) error {
	tables := []string{"geoip_loads", "passive_dns"}
	for _, t := range tables {
		ok, err := e.tableExists(ctx, t)
		if err != nil {
			return fmt.Errorf("enrich: %w", err)
		}
		if !ok {
			return fmt.Errorf("enrich: database %s has no table %s: apply the schema migrations first (packetlake schema apply, or start an ingester)", e.cfg.ClickHouse.Database, t)
		}
	}
	e.checkGeoIP(ctx)
	if e.cfg.PassiveDNS {
		if err := e.startPassiveDNS(ctx); err != nil {
			return fmt.Errorf("enrich: %w", err)
		}
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if len(e.sources) > 0 {
		e.every(loopCtx, e.cfg.GeoIPCheck, false, e.checkGeoIP)
	}
	if e.cfg.PassiveDNS {
		e.every(loopCtx, e.cfg.PassiveDNSInterval, true, func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, e.cfg.QueryTimeout)
			defer cancel()
			if err := e.passiveDNSCycle(ctx); err != nil {
				e.m.pdnsErrors.Inc()
				e.log.Error("passive dns cycle failed", "err", err)
				return
			}
			e.m.pdnsCycles.Inc()
		})
	}
	e.phase.SetRunning()
	e.log.Info("enricher started", "geoip_files", len(e.sources), "passive_dns", e.cfg.PassiveDNS)
	return nil
}

// every runs fn each period (first at once if now) until ctx ends.
func (e *Enricher) every(ctx context.Context, period time.Duration, now bool, fn func(context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if now {
			fn(ctx)
		}
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
}

// checkGeoIP loads each file whose size or modification time moved.
func (e *Enricher) checkGeoIP(ctx context.Context) {
	for _, s := range e.sources {
		changed, err := s.changed()
		if err != nil {
			e.m.geoErrors.WithLabelValues(s.kind).Inc()
			e.log.Error("geoip: cannot read database file", "kind", s.kind, "err", err)
			continue
		}
		if !changed {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, e.cfg.QueryTimeout)
		loaded, err := e.load(lctx, s)
		cancel()
		switch {
		case err != nil:
			s.seenSize, s.seenMtime = -1, time.Time{} // look again next time: ClickHouse may be back
			e.m.geoErrors.WithLabelValues(s.kind).Inc()
			e.log.Error("geoip: load failed, the previous data stays in use", "kind", s.kind, "path", s.path, "err", err)
		case loaded:
			e.m.geoLoads.WithLabelValues(s.kind).Inc()
		}
	}
}

// Ready is nil from a successful Start until Stop.
func (e *Enricher) Ready() error { return e.phase.Ready() }

// Stop ends the loops (a load or cycle in progress is cancelled; the next start redoes it).
func (e *Enricher) Stop() error {
	e.stopOnce.Do(func() {
		e.phase.SetStopping()
		if e.cancel != nil {
			e.cancel()
		}
		e.wg.Wait()
		e.ch.Close()
		e.phase.SetStopped()
	})
	return nil
}

func (e *Enricher) tableExists(ctx context.Context, table string) (bool, error) {
	n := 0
	err := e.ch.Rows(ctx, "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
		map[string]string{"t": table}, func(r map[string]json.RawMessage) error { return json.Unmarshal(r["n"], &n) })
	return n > 0, err
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
