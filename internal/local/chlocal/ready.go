package chlocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/packetlake/packetlake/internal/chconn"
)

// waitReady polls until both listeners answer a real query and the engine has opened its
// FIFO, the engine exits, or the timeout or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	ch := chconn.Config{Addr: s.TCPAddr(), HTTPAddr: s.HTTPAddr()}
	// The probe never keeps a connection: ClickHouse waits for open client connections at
	// shutdown and exits the process forcefully if they outlive shutdown_wait_unfinished.
	client, err := ch.Client(chconn.Transport(func(t *http.Transport) { t.DisableKeepAlives = true }))
	if err != nil {
		return err
	}
	defer client.Close()
	var last error
	for {
		select {
		case <-s.done:
			return explainExit(s.cfg, s.errText)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("start of clickhouse cancelled: %w", ctx.Err())
			}
			return fmt.Errorf("clickhouse on tcp %s / http %s not ready within %v (last probe: %v): %w",
				s.TCPAddr(), s.HTTPAddr(), readyTimeout, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if last = s.probe(ctx, ch, client); last == nil && s.engineHoldsFIFO() {
			return nil
		}
	}
}

// probe runs the same query over HTTP and over the native protocol. It asks for this engine's
// own blocking statement (its FIFO path is unique), so a foreign server that happens to answer
// on the port is never mistaken for ours.
func (s *Server) probe(ctx context.Context, ch chconn.Config, client *chconn.Client) error {
	want := "1"
	q := "SELECT count() FROM system.processes WHERE position(query, " + sqlString(s.fifoPath) +
		") > 0 AND query_id != queryID()"
	got, err := httpQuery(ctx, client, q)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	if got != want {
		return fmt.Errorf("http %s answered %q, want %q: another server on this port?", s.HTTPAddr(), got, want)
	}
	got, err = nativeQuery(ctx, ch, q)
	if err != nil {
		return fmt.Errorf("native: %w", err)
	}
	if got != want {
		return fmt.Errorf("tcp %s answered %q, want %q: another server on this port?", s.TCPAddr(), got, want)
	}
	return nil
}

func httpQuery(ctx context.Context, client *chconn.Client, q string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body, err := client.Query(ctx, q, nil, nil)
	if err != nil {
		return "", err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 4096))
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

func nativeQuery(ctx context.Context, ch chconn.Config, q string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := ch.Open(func(o *clickhouse.Options) { o.DialTimeout = time.Second })
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var v string
	if err := conn.QueryRow(ctx, "SELECT toString(("+q+"))").Scan(&v); err != nil {
		return "", err
	}
	return v, nil
}
