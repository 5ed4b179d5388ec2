package kafkaconn

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// packetlake never creates topics in production (brokers usually run with
// auto.create.topics.enable=false), so without CheckTopics a missing topic shows only as records
// that are never acknowledged (collector) or never arrive (ingester).

// topicCheckTimeout bounds one check; a broker that does not answer in that time is for the
// client's own errors and metrics to report, not for the check.
const topicCheckTimeout = 15 * time.Second

// CheckTopics looks the topics up once, at a component's startup, and logs an error naming each
// one that does not exist and what the missing topic means for the caller (consequence). It
// returns the missing topics. A ctx cancelled meanwhile (the component stopped) ends it silently.
func CheckTopics(ctx context.Context, cl *kgo.Client, log *slog.Logger, consequence string, topics ...string) []string {
	ctx, cancel := context.WithTimeout(ctx, topicCheckTimeout)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return nil // the answer may come from the client's metadata cache even so
	}
	if err != nil {
		log.Warn("cannot check the Kafka topics at startup", "topics", topics, "err", err)
		return nil
	}
	var missing []string
	for _, t := range topics {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
			log.Error("Kafka topic does not exist: "+consequence+" (packetlake topics create)", "topic", t)
		case d.Err != nil:
			log.Warn("Kafka topic not usable", "topic", t, "err", d.Err)
		}
	}
	return missing
}
