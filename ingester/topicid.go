package ingester

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Topic IDs. A topic deleted and re-created under the same name is a new log whose offsets start
// again at 0; Kafka (>= 2.8) gives each instance its own ID. Every dedup token and claim names
// the instance, so a batch of the new instance never carries the token of an old batch that
// ClickHouse still remembers (it would drop the new rows as duplicates). A worker takes the ID
// from the fetch responses that carried its records (Kafka >= 3.1), else from the ID looked up
// when the partition was assigned; before 2.8 there are no IDs and the zero ID stands in.

// topicIDString renders a topic ID as Kafka's tools print it (URL-safe base64, no padding).
func topicIDString(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// lookupTopicIDs asks Kafka for the current IDs of topics and caches them (a topic that does
// not exist is left out).
func (ing *Ingester) lookupTopicIDs(ctx context.Context, topics []string) (map[string][16]byte, error) {
	tds, err := kadm.NewClient(ing.client).ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list topics %v: %w", topics, err)
	}
	ids := make(map[string][16]byte, len(tds))
	ing.idMu.Lock()
	defer ing.idMu.Unlock()
	for _, td := range tds {
		if td.Err == nil {
			ids[td.Topic] = td.ID
			ing.topicIDs[td.Topic] = td.ID
		}
	}
	return ids, nil
}

// cachedTopicID is the ID of topic looked up at the last assignment (zero if none).
func (ing *Ingester) cachedTopicID(topic string) [16]byte {
	ing.idMu.Lock()
	defer ing.idMu.Unlock()
	return ing.topicIDs[topic]
}

// checkRecreated runs when fetching a topic fails as unknown. franz-go never adopts the new ID
// of a topic it consumes (it could not validate the new log against the old one): a re-created
// topic fails with UNKNOWN_TOPIC_ID until it is purged from the client and added back. If Kafka
// now has another ID for the topic than the one it had at assignment, checkRecreated does that:
// the purge revokes the old instance's partitions (each worker inserts and commits what it
// holds, marked with the old ID), adding the topic back assigns the new instance, which starts
// at its beginning (Kafka deleted the old committed offsets; adjustOffsets ignores any written
// since under the old ID). At most one check per topic runs at a time, one a second.
func (ing *Ingester) checkRecreated(topic string) {
	ing.idMu.Lock()
	if ing.checking[topic] || time.Since(ing.lastCheck[topic]) < time.Second {
		ing.idMu.Unlock()
		return
	}
	ing.checking[topic] = true
	old := ing.topicIDs[topic]
	ing.idMu.Unlock()
	go func() {
		defer func() {
			ing.idMu.Lock()
			ing.checking[topic], ing.lastCheck[topic] = false, time.Now()
			ing.idMu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ids, err := ing.lookupTopicIDs(ctx, []string{topic})
		id, exists := ids[topic]
		if err != nil || !exists || id == old || old == ([16]byte{}) {
			return // still deleted, a transient error of a topic that did not change, or no ID to compare
		}
		ing.log.Warn("topic was deleted and re-created: consuming its new instance from the beginning",
			"topic", topic, "old_topic_id", topicIDString(old), "topic_id", topicIDString(id))
		ing.metrics.topicRecreations.WithLabelValues(topic).Inc()
		ing.client.PurgeTopicsFromConsuming(topic)
		ing.client.AddConsumeTopics(topic)
	}()
}
