package collector

import (
	"context"

	"github.com/packetlake/packetlake/internal/kafkaconn"
)

// checkTopics names, once at startup, the collector's topics the brokers do not have.
func (c *Collector) checkTopics(ctx context.Context) {
	topics := []string{c.cfg.Topic, c.cfg.StatsTopic}
	if c.cfg.FlowsTopic != "" {
		topics = append(topics, c.cfg.FlowsTopic)
	}
	kafkaconn.CheckTopics(ctx, c.prod.cl, c.log, "records for it wait, unacknowledged, until it is created", topics...)
}
