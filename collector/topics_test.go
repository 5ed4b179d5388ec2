package collector

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/logbuf"
)

// TestMissingTopicIsNamedAtStartup: a collector whose flows topic does not exist says so, by
// name, right after it starts, and names none of the topics that do exist.
func TestMissingTopicIsNamedAtStartup(t *testing.T) {
	k := startKafka(t)
	cfg := testConfig(k.Addr())
	cfg.FlowsTopic = "no-such-flows-topic"
	var logs logbuf.Buffer
	startLiveWith(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	const want = "Kafka topic does not exist"
	if !waitFor(20*time.Second, func() bool { return strings.Contains(logs.String(), want) }) {
		t.Fatalf("no %q in the log within 20 s:\n%s", want, logs.String())
	}
	// The check logs the topics in order (packets, stats, flows) in one pass: any line for the
	// first two is written before the flows topic's.
	var named []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, want) {
			named = append(named, line[strings.Index(line, "topic="):])
		}
	}
	if len(named) != 1 || named[0] != "topic="+cfg.FlowsTopic {
		t.Errorf("missing topics named: %q, want only topic=%s", named, cfg.FlowsTopic)
	}
}
