package ingester

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumer group: cooperative-sticky, so a rebalance moves only the partitions that change
// owner and the others keep flowing; autocommit off, because an offset is committed only after
// ClickHouse has the batch (flush.go); BlockRebalanceOnPoll, so a revoke never runs between a
// poll and the hand-off of its records, and the revoke callback waits until each revoked
// partition's worker has inserted and committed what it was handed. The next owner starts
// exactly at that commit: nothing lost, nothing doubled. A member that lost its session
// without a revoke is fenced by the claims (claim.go).

type topicPartition struct {
	topic     string
	partition int32
}

// topics are the topics the ingester consumes.
func (ing *Ingester) topics() []string {
	topics := []string{ing.cfg.Topic}
	if ing.cfg.StatsTopic != "" {
		topics = append(topics, ing.cfg.StatsTopic)
	}
	if ing.cfg.FlowsTopic != "" {
		topics = append(topics, ing.cfg.FlowsTopic)
	}
	if ing.cfg.DropsTopic != "" {
		topics = append(topics, ing.cfg.DropsTopic)
	}
	return topics
}

func (ing *Ingester) kafkaOptions() []kgo.Opt {
	topics := ing.topics()
	return append(append([]kgo.Opt(nil), ing.kafkaOpt...),
		kgo.ConsumerGroup(ing.cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(ing.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, ing.cfg.SessionTimeout/3)),
		// A revoke may take RevokeTimeout to flush; the group must wait at least that long.
		kgo.RebalanceTimeout(max(60*time.Second, 2*ing.cfg.RevokeTimeout)),
		kgo.BlockRebalanceOnPoll(),
		// franz-go reports a re-created topic's UNKNOWN_TOPIC_ID only after five silent
		// retries (about 30 s); kept, the first one starts checkRecreated.
		kgo.KeepRetryableFetchErrors(),
		// A new group starts at the beginning: frames produced before the first ingester ran
		// are in Kafka and are wanted.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Frames are up to a few hundred KiB; 8 MiB per partition per fetch keeps a fetch
		// round trip from limiting a fast partition.
		kgo.FetchMaxPartitionBytes(8<<20),
		// The committed offsets' markers: claims to honour, topic instances to check (claim.go).
		kgo.OnOffsetsFetched(ing.onOffsetsFetched),
		kgo.AdjustFetchOffsetsFn(ing.adjustOffsets),
		kgo.OnPartitionsAssigned(ing.onAssigned),
		kgo.OnPartitionsRevoked(ing.onRevoked),
		kgo.OnPartitionsLost(ing.onLost),
	)
}

// pollLoop hands fetched records to the partition workers until ctx is done.
func (ing *Ingester) pollLoop(ctx context.Context) {
	defer close(ing.pollDone)
	lastErrLog := time.Time{}
	for {
		fetches := ing.client.PollRecords(ctx, 100_000)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			ing.client.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			// A re-created topic shows as unknown, or as data loss when the position is past the
			// end of the new log.
			var loss *kgo.ErrDataLoss
			unknown := errors.Is(err, kerr.UnknownTopicID) || errors.Is(err, kerr.UnknownTopicOrPartition)
			if unknown || errors.As(err, &loss) {
				ing.checkRecreated(topic)
			}
			if kerr.IsRetriable(err) && !unknown {
				return // the client retries it (kept only for the check above)
			}
			ing.metrics.kafkaErrors.WithLabelValues("fetch").Inc()
			if time.Since(lastErrLog) > 10*time.Second { // the client retries; say so now and then
				lastErrLog = time.Now()
				ing.log.Warn("kafka fetch error", "topic", topic, "partition", partition, "err", err)
			}
		})
		fetches.EachTopic(func(t kgo.FetchTopic) {
			for _, p := range t.Partitions {
				if len(p.Records) > 0 {
					w := ing.worker(t.Topic, p.Partition)
					w.gaps.logStart.Store(p.LogStartOffset) // tells a jump past deleted records (expiry.go)
					w.deliver(t.TopicID, p.Records, p.HighWatermark)
				}
			}
		})
		ing.client.AllowRebalance()
	}
}

// worker returns the worker of a partition, starting one if the assign callback has not (it
// always has; this keeps a record from ever being dropped for want of one).
func (ing *Ingester) worker(topic string, partition int32) *partitionWorker {
	ing.mu.Lock()
	defer ing.mu.Unlock()
	tp := topicPartition{topic, partition}
	if w, ok := ing.workers[tp]; ok {
		return w
	}
	var s sink
	if topic == ing.cfg.Topic {
		ps := newPacketSink(ing.writer, func(n int) { ing.metrics.packets.Add(float64(n)) })
		ps.quic = ing.metrics.addQUIC
		s = ps
	} else if topic == ing.cfg.FlowsTopic {
		s = newFlowsSink(ing.conn, ing.log.With("topic", topic, "partition", partition), ing.metrics.flowDuplicates)
	} else if topic == ing.cfg.DropsTopic {
		s = newDropsSink(ing.conn, ing.log.With("topic", topic, "partition", partition), ing.metrics.dropDuplicates)
	} else {
		s = &statsSink{conn: ing.conn, partition: partition}
	}
	w := newPartitionWorker(ing, topic, partition, s)
	ing.workers[tp] = w
	go w.run()
	return w
}

func (ing *Ingester) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	for topic, ps := range assigned {
		for _, p := range ps {
			ing.worker(topic, p)
		}
	}
	if len(assigned) > 0 {
		ing.log.Info("partitions assigned", "partitions", assigned)
	}
}

// onRevoked waits for every revoked partition's worker to insert and commit its last batch.
func (ing *Ingester) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	ing.stopWorkers(revoked, (*partitionWorker).revoke)
	if len(revoked) > 0 {
		ing.log.Info("partitions revoked", "partitions", revoked)
	}
}

// onLost drops the workers at once: another member may already own the partitions, and their
// commits would be refused anyway.
func (ing *Ingester) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	ing.stopWorkers(lost, (*partitionWorker).abort)
	if len(lost) > 0 {
		ing.log.Warn("partitions lost", "partitions", lost)
	}
}

func (ing *Ingester) stopWorkers(tps map[string][]int32, stop func(*partitionWorker)) {
	var ws []*partitionWorker
	ing.mu.Lock()
	for topic, ps := range tps {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if w, ok := ing.workers[tp]; ok {
				ws = append(ws, w)
				delete(ing.workers, tp)
			}
		}
	}
	ing.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range ws {
		stop(w)
		wg.Add(1)
		go func() { defer wg.Done(); w.wait() }()
	}
	wg.Wait()
}
