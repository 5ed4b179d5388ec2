package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDaemon is ready from the end of Start to the beginning of Stop, like the three daemons;
// Start waits for release.
type fakeDaemon struct {
	starting, release chan struct{}
	startErr          error
	ready             atomic.Pointer[error]
	stopped           atomic.Bool
}

func newFakeDaemon() *fakeDaemon {
	d := &fakeDaemon{starting: make(chan struct{}), release: make(chan struct{})}
	d.setReady(errors.New("not started"))
	return d
}

func (d *fakeDaemon) setReady(err error) { d.ready.Store(&err) }
func (d *fakeDaemon) Ready() error       { return *d.ready.Load() }

func (d *fakeDaemon) Start(context.Context) error {
	close(d.starting)
	<-d.release
	if d.startErr == nil {
		d.setReady(nil)
	}
	return d.startErr
}

func (d *fakeDaemon) Stop() error {
	d.setReady(errors.New("stopping"))
	d.stopped.Store(true)
	return nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /healthz answers 503 with the daemon's reason while it starts, 200 once it is ready, /livez
// 200 throughout, and /metrics serves the registry; a signal stops the daemon.
func TestHealthzFollowsDaemonReadiness(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := newFakeDaemon()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	result := make(chan error, 1)
	go func() {
		result <- runDaemon(ctx, d, nil, "signal", metricsFlags{Addr: addr}, newRegistry(), slog.New(slog.DiscardHandler))
	}()
	<-d.starting
	base := "http://" + addr
	if code, body := get(t, base+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not started") {
		t.Errorf("healthz while starting: %d %q, want 503 not started", code, body)
	}
	if code, body := get(t, base+"/livez"); code != http.StatusOK {
		t.Errorf("livez while starting: %d %q, want 200: not ready is alive", code, body)
	}
	close(d.release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := get(t, base+"/healthz")
		if code == http.StatusOK && strings.TrimSpace(body) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz once started: %d %q, want 200 ok", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics: %d, %.200s", code, body)
	}
	cancel()
	if err := <-result; err != nil || !d.stopped.Load() {
		t.Errorf("after the signal: err %v, stopped %v", err, d.stopped.Load())
	}
}

// A daemon that fails to start is stopped (Stop releases what New opened) and its error returned.
func TestRunDaemonStopsAfterFailedStart(t *testing.T) {
	d := newFakeDaemon()
	d.startErr = errors.New("no ClickHouse")
	close(d.release)
	err := runDaemon(context.Background(), d, nil, "signal", metricsFlags{}, newRegistry(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "no ClickHouse") || !d.stopped.Load() {
		t.Errorf("err %v, stopped %v", err, d.stopped.Load())
	}
}
