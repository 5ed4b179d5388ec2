//go:build testhooks

package ingester

// Test hooks for `packetlake ingest` run as a process by the ingester's tests, compiled only
// into a binary built with -tags testhooks (ingester/env_test.go builds one): the packetlake
// binary users build and run has neither this file nor any environment variable it reads.
//
// PACKETLAKE_TEST_HOLD=<point>:<topic> holds the first batch of topic that reaches point
// ("before-claim" or "claimed", see claimHook, or "inserted", see afterInsertHook) until the process receives SIGCONT (or the
// partition is taken away), after printing "test hook: holding batch <token> at <point>" to
// stderr: a test waits for that line, stops the process with SIGSTOP past its session timeout,
// lets another member take the partition over, then continues it.

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
)

func init() {
	point, topic, ok := strings.Cut(os.Getenv("PACKETLAKE_TEST_HOLD"), ":")
	if !ok {
		return
	}
	var held atomic.Bool
	hold := func(ctx context.Context, at, token string) {
		if at != point || !strings.HasPrefix(token, topic+"/") || !held.CompareAndSwap(false, true) {
			return
		}
		cont := make(chan os.Signal, 1)
		signal.Notify(cont, syscall.SIGCONT)
		defer signal.Stop(cont)
		fmt.Fprintf(os.Stderr, "test hook: holding batch %s at %s\n", token, at)
		select {
		case <-cont:
			fmt.Fprintf(os.Stderr, "test hook: released batch %s\n", token)
		case <-ctx.Done():
		}
	}
	claimHook = hold
	afterInsertHook = func(ctx context.Context, token string, _ cut) { hold(ctx, "inserted", token) }
}
