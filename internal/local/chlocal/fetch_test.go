package chlocal

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/logbuf"
)

// TestConcurrentFetch runs two fetches into an empty cache at once, as two test binaries
// would: the lock must make one wait for the other, and both must get the verified file.
func TestConcurrentFetch(t *testing.T) {
	cache := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var wg sync.WaitGroup
	paths, errs := make([]string, 2), make([]error, 2)
	t0 := time.Now()
	for i := range 2 {
		wg.Go(func() { paths[i], errs[i] = EnsureLib(ctx, cache, log) })
	}
	wg.Wait()
	t.Logf("two concurrent fetches took %v", time.Since(t0).Round(time.Millisecond))
	for i := range 2 {
		if errs[i] != nil || paths[i] != LibPath(cache) {
			t.Fatalf("fetch %d = %q, %v", i, paths[i], errs[i])
		}
	}
	if ok, err := checkCached(LibPath(cache)); !ok || err != nil {
		t.Fatalf("cached file not valid: %v", err)
	}
	if n := strings.Count(logs.String(), "fetching ClickHouse engine"); n != 1 {
		t.Errorf("downloaded %d times, want 1; logs:\n%s", n, logs.String())
	}
}
