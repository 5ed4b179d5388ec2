package kafkalocal

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEnsureKafkaFetch fetches into an empty cache from two goroutines at once: the flock lets
// one download while the other waits, and both get the same complete directory.
func TestEnsureKafkaFetch(t *testing.T) {
	cache := t.TempDir()
	start := time.Now()
	var wg sync.WaitGroup
	dirs, errs := make([]string, 2), make([]error, 2)
	for i := range 2 {
		wg.Go(func() { dirs[i], errs[i] = EnsureKafka(t.Context(), cache, testLogger(t)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("EnsureKafka #%d: %v", i, err)
		}
	}
	if dirs[0] != dirs[1] {
		t.Fatalf("EnsureKafka returned %q and %q", dirs[0], dirs[1])
	}
	t.Logf("fetched Apache Kafka %s jars in %s (Maven's ~/.m2 may already hold them)", KafkaVersion, time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(dirs[0], "kafka_2.13-"+KafkaVersion+".jar")); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "kafka", "*.tmp-*")); len(left) > 0 {
		t.Fatalf("temp dirs left behind: %v", left)
	}

	// A damaged cache is reported with the fix, not used.
	if err := os.Remove(filepath.Join(dirs[0], "kafka_2.13-"+KafkaVersion+".jar")); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureKafka(t.Context(), cache, nil)
	if err == nil || !strings.Contains(err.Error(), "rm -rf") {
		t.Fatalf("EnsureKafka on a damaged cache: got %v, want an error naming rm -rf", err)
	}
}
