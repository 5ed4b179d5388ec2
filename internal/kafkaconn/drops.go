package kafkaconn

// DropsTopic is the spec of the collectors' kernel drop counts topic (record.DropMessage): one
// partition (a few small messages per collector per interval, only when the kernel drops), the
// packets' retention, so an ingester outage loses drop counts no sooner than packets.
func DropsTopic(name string) TopicSpec {
	return TopicSpec{Name: name, Partitions: 1, Configs: map[string]string{
		"cleanup.policy":    "delete",
		"compression.type":  "producer",
		"retention.ms":      PacketsRetention,
		"max.message.bytes": MaxMessageBytes,
	}}
}
