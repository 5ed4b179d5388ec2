package collector

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// topicCheckTimeout bounds the startup check of the topics; a broker that does not answer in
// that time is the producer's to report (its errors and shed counts), not the check's.
const topicCheckTimeout = 15 * time.Second

// checkTopics tells, once at startup, which of the collector's topics the brokers do not have.
// Production does not create topics (brokers usually run with auto.create.topics.enable=false),
// so a missing one otherwise shows only as records that are never acknowledged.
func (c *Collector) checkTopics(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, topicCheckTimeout)
	defer cancel()
	topics := []string{c.cfg.Topic, c.cfg.StatsTopic}
	if c.cfg.FlowsTopic != "" {
		topics = append(topics, c.cfg.FlowsTopic)
	}
	details, err := kadm.NewClient(c.prod.cl).ListTopics(ctx, topics...)
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
			return // stopped meanwhile
		}
		c.log.Warn("cannot check the Kafka topics at startup", "brokers", c.cfg.Brokers, "err", err)
		return
	}
	for _, t := range topics {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			c.log.Error("Kafka topic does not exist: records for it wait, unacknowledged, until it is created "+
				"(kafka-topics.sh --create --topic NAME)", "topic", t)
		case d.Err != nil:
			c.log.Warn("Kafka topic not usable", "topic", t, "err", d.Err)
		}
	}
}
