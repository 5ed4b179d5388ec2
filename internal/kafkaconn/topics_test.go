package kafkaconn

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCheckTopicsNamesMissingTopics(t *testing.T) {
	k, err := kafkalocal.StartEmbedded(kafkalocal.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := kafkalocal.CreateTopic(ctx, k.Addr(), "present", 2); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	missing := CheckTopics(ctx, cl, log, "what it means", "present", "absent")
	if !slices.Equal(missing, []string{"absent"}) {
		t.Errorf("missing = %q, want [absent]", missing)
	}
	if got := strings.Count(logs.String(), "does not exist: what it means"); got != 1 || !strings.Contains(logs.String(), "topic=absent") {
		t.Errorf("log names the missing topic %d times, want once:\n%s", got, logs.String())
	}

	// A component stopping while the check runs: nothing reported, nothing logged.
	logs.Reset()
	stopped, stop := context.WithCancel(ctx)
	stop()
	if missing := CheckTopics(stopped, cl, log, "what it means", "absent"); missing != nil || logs.Len() != 0 {
		t.Errorf("cancelled check: missing %q, log %q; want nothing", missing, logs.String())
	}
}
