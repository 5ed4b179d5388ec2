package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/packetlake/packetlake/console"
	"github.com/packetlake/packetlake/internal/chconn"
)

// startConsole serves the web console over the demo's database while the demo runs. A console
// that cannot listen (the port is taken) is a warning, not a failed demo.
func (r *runner) startConsole(ctx context.Context) {
	if r.cfg.ConsoleListen == "off" {
		return
	}
	q, err := r.clickhouse().Client(chconn.Timeout(time.Minute))
	if err != nil {
		r.log.Warn("the console could not start; the demo goes on without it", "err", err)
		return
	}
	srv := console.New(console.Config{Querier: q, Logger: r.componentLog.With("component", "console")})
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- console.Serve(cctx, console.Listen{Addr: r.cfg.ConsoleListen}, srv, r.componentLog, func(url string) { ready <- url })
	}()
	select {
	case url := <-ready:
		r.consoleURL = url
		fmt.Fprintf(r.cfg.Out, "Console: %s  (traffic, packets, anomalies and the pipeline, live while the demo runs)\n", url)
		r.cleanup.push("stop the console", func() error { cancel(); err := <-done; q.Close(); return err })
	case err := <-done:
		cancel()
		q.Close()
		r.log.Warn("the console could not start; the demo goes on without it", "listen", r.cfg.ConsoleListen, "err", err)
	}
}

// followConsole does through the console's API what a user does in the browser at the end of
// the demo: open the anomalies and click the port scan's packets. The result goes in the summary.
func (r *runner) followConsole(ctx context.Context, sum *Summary) {
	sum.ConsoleURL = r.consoleURL
	if r.consoleURL == "" {
		return
	}
	get := func(path string, v url.Values, out any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.consoleURL+path+"?"+v.Encode(), nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var an struct {
		Anomalies []struct{ Kind, Subject, Filter, From, To string }
	}
	if err := get("api/v1/anomalies", url.Values{"from": {sum.Start.Add(-time.Minute).UTC().Format(time.RFC3339)}}, &an); err != nil {
		r.log.Warn("console: anomalies", "err", err)
		return
	}
	for _, a := range an.Anomalies {
		if a.Kind != "port_scan" {
			continue
		}
		var p struct{ Packets []json.RawMessage }
		if err := get("api/v1/packets", url.Values{"from": {a.From}, "to": {a.To}, "filter": {a.Filter}, "limit": {"10000"}}, &p); err != nil {
			r.log.Warn("console: packets", "err", err)
			return
		}
		sum.ConsoleScanPackets = len(p.Packets)
		fmt.Fprintf(r.cfg.Out, "\nIn the console: %sanomalies shows the port scan from %s; its packets: %spackets?%s\n",
			r.consoleURL, a.Subject, r.consoleURL, url.Values{"from": {a.From}, "to": {a.To}, "filter": {a.Filter}}.Encode())
		return
	}
}
