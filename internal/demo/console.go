package demo

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/packetlake/packetlake/console"
)

// startConsole serves the web console over the demo's database while the demo runs. A console
// that cannot listen (the port is taken) is a warning, not a failed demo.
func (r *runner) startConsole(ctx context.Context) {
	if r.cfg.ConsoleListen == "off" {
		return
	}
	q := &console.HTTPQuerier{BaseURL: "http://" + r.ch.HTTPAddr(), Database: Database, Client: &http.Client{Timeout: time.Minute}}
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
		r.cleanup.push("stop the console", func() error { cancel(); return <-done })
	case err := <-done:
		cancel()
		r.log.Warn("the console could not start; the demo goes on without it", "listen", r.cfg.ConsoleListen, "err", err)
	}
}
