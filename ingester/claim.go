package ingester

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Claims: every batch is claimed in Kafka, fenced by the group generation, before its INSERT.
//
// A member that lost its group session (a GC pause, SIGSTOP, a network partition) runs its
// workers on until it hears of the loss. Had one of them inserted a batch after the partition
// moved, the new owner, cutting its own batches, would store the same packets under another
// token. So before a batch's first INSERT the worker commits the partition's current position
// (the batch's first offset: the committed offset does not move) with the metadata
// "pl1 <topic id> <first>-<last>", in a raw OffsetCommit carrying the member ID and generation
// franz-go holds at that moment (CommitOffsetsSync cannot set metadata: it writes the member ID
// there). The group coordinator refuses a commit from a member it dropped or from an older
// generation (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID), so:
//
//   - a member fenced before its claim never inserts; the batch stays uncommitted for the next
//     owner;
//   - a claim accepted before the member was fenced is among the committed offsets the next
//     owner fetches when it is assigned the partition (onOffsetsFetched): it cuts its first
//     batch at exactly the claimed range, sends the same token, and ClickHouse keeps one copy
//     whichever INSERT comes second.
//
// After the INSERTs the worker commits last+1 with "pl1 <topic id>". The topic ID in both lets
// the next owner tell a commit of a deleted instance of the topic from one of the current
// instance (adjustOffsets). One claim per partition is outstanding at a time: the next batch is
// claimed only once the previous one is committed.
//
// No claim is accepted in a generation in which the member does not own the partition.
// franz-go (v1.22) reads the member ID and generation at send time (GroupMetadata); it calls
// OnPartitionsLost (manageFailWait) and OnPartitionsRevoked before it joins again, and both
// wait until the partition's worker exited (consumer.go). A member the coordinator dropped has
// an unknown member ID. A cooperative rebalance takes a partition from a live member in
// generation G+1 without giving it to anyone, and assigns it in G+2 only after that member
// rejoined, i.e. after its worker exited: every commit the coordinator accepted from the old
// owner precedes the new owner's offset fetch.

// claimHook, set only by tests (see testhooks_on.go), runs before a batch's claim is sent
// ("before-claim") and once Kafka accepted it ("claimed"): the two places where a stalled
// member holds a batch that another member may take over.
var claimHook func(ctx context.Context, point, token string)

// Commit metadata markers. Anything else (franz-go writes the member ID, old ingesters did) is
// no marker: the committed offset is used as it is.
const markerPrefix = "pl1 "

func claimMarker(id [16]byte, first, last int64) string {
	return fmt.Sprintf("%s%s %d-%d", markerPrefix, topicIDString(id), first, last)
}

func doneMarker(id [16]byte) string { return markerPrefix + topicIDString(id) }

// marker is a parsed commit metadata of this ingester.
type marker struct {
	topicID     string // topicIDString of the instance the commit was made for
	claim       bool   // a batch [first, last] was claimed and may be in ClickHouse
	first, last int64
}

func parseMarker(s string) (marker, bool) {
	rest, ok := strings.CutPrefix(s, markerPrefix)
	if !ok {
		return marker{}, false
	}
	id, rng, hasRange := strings.Cut(rest, " ")
	m := marker{topicID: id}
	if !hasRange {
		return m, id != ""
	}
	f, l, ok := strings.Cut(rng, "-")
	first, err1 := strconv.ParseInt(f, 10, 64)
	last, err2 := strconv.ParseInt(l, 10, 64)
	if !ok || err1 != nil || err2 != nil || first > last {
		return marker{}, false
	}
	m.claim, m.first, m.last = true, first, last
	return m, true
}

// fencedError is the group's refusal of a commit: this member no longer owns the partition in
// the group's current generation (or is between sessions).
type fencedError struct{ err error }

func (e *fencedError) Error() string { return "refused by the group: " + e.err.Error() }
func (e *fencedError) Unwrap() error { return e.err }

var errNoSession = errors.New("no group session (member ID or generation unknown)")

// commitMarked commits offset with metadata meta for one partition, as the group member
// franz-go is at this moment, and waits for the coordinator's answer.
func (ing *Ingester) commitMarked(ctx context.Context, topic string, topicID [16]byte, partition int32, offset int64, epoch int32, meta string) error {
	member, gen := ing.client.GroupMetadata()
	return commitAs(ctx, ing.client, ing.cfg.Group, member, gen, topic, topicID, partition, offset, epoch, meta)
}

// commitAs commits as member of generation gen of group. The topic goes by name and by ID:
// OffsetCommit v10 (Kafka 4, kfake) names topics by ID alone and refuses a zero one with
// UNKNOWN_TOPIC_ID; up to v9 (Kafka 3.x) the name counts. franz-go sends the newest version both
// sides speak.
func commitAs(ctx context.Context, cl *kgo.Client, group, member string, gen int32, topic string, topicID [16]byte, partition int32, offset int64, epoch int32, meta string) error {
	if member == "" || gen < 0 {
		// Kafka accepts a commit without a generation (an "admin" commit) when the group is
		// empty: never send one from a member.
		return &fencedError{errNoSession}
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = partition, offset, epoch, &meta
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) ||
					errors.Is(err, kerr.FencedInstanceID) || errors.Is(err, kerr.StaleMemberEpoch) {
					return &fencedError{err}
				}
				return err
			}
			return nil
		}
	}
	return errors.New("offset commit response without the partition")
}

// claim claims the batch for this member in Kafka; nothing of the batch may be inserted before
// it succeeded.
func (w *partitionWorker) claim(ctx context.Context, token string) error {
	if claimHook != nil {
		claimHook(w.ctx, "before-claim", token)
	}
	err := w.ing.commitMarked(ctx, w.topic, w.batchID, w.partition, w.first, w.firstEpoch, claimMarker(w.batchID, w.first, w.last))
	if err != nil {
		w.countRefusal(w.ing.metrics.claimsRefused, err)
		return fmt.Errorf("claim batch %s: %w", token, err)
	}
	w.ing.metrics.claims.Inc()
	w.progress.claimed, w.claimedAt = true, time.Now()
	if claimHook != nil {
		claimHook(w.ctx, "claimed", token)
	}
	return nil
}

// commit commits last+1 once the batch is in ClickHouse.
func (w *partitionWorker) commit(ctx context.Context) error {
	err := w.ing.commitMarked(ctx, w.topic, w.batchID, w.partition, w.last+1, w.lastEpoch, doneMarker(w.batchID))
	if err != nil {
		w.countRefusal(w.ing.metrics.commitsRefused, err)
		return fmt.Errorf("commit offset %d: %w", w.last+1, err)
	}
	return nil
}

// countRefusal counts a refusal by the group under its Kafka error name.
func (w *partitionWorker) countRefusal(c *prometheus.CounterVec, err error) {
	var f *fencedError
	if !errors.As(err, &f) {
		return
	}
	name := f.err.Error()
	var ke *kerr.Error
	if errors.As(f.err, &ke) {
		name = ke.Message
	}
	c.WithLabelValues(name).Inc()
}

// fenced reports whether err is the group's refusal of this member's commit.
func fenced(err error) bool {
	var f *fencedError
	return errors.As(err, &f)
}

// startCommit is a partition's committed offset and marker as fetched at assignment.
type startCommit struct {
	offset int64
	marker marker
}

// onOffsetsFetched keeps the markers of the committed offsets franz-go fetched for newly
// assigned partitions: the claim a worker honours on its first batch, and the topic ID
// adjustOffsets checks. It sees the very response franz-go starts the partitions from.
func (ing *Ingester) onOffsetsFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	ing.mu.Lock()
	defer ing.mu.Unlock()
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				tp := topicPartition{t.Topic, p.Partition}
				delete(ing.committed, tp)
				if p.ErrorCode != 0 || p.Offset < 0 || p.Metadata == nil {
					continue
				}
				if m, ok := parseMarker(*p.Metadata); ok {
					ing.committed[tp] = startCommit{offset: p.Offset, marker: m}
				}
			}
		}
	}
	return nil
}

// takeCommitted returns (once) the committed marker fetched when tp was assigned.
func (ing *Ingester) takeCommitted(tp topicPartition) (startCommit, bool) {
	ing.mu.Lock()
	defer ing.mu.Unlock()
	c, ok := ing.committed[tp]
	delete(ing.committed, tp)
	return c, ok
}

// adjustOffsets starts a partition from the beginning when its committed offset was written
// for a deleted instance of the topic. Kafka deletes a topic's committed offsets with it, but
// a commit by name that reaches the coordinator after the topic was re-created (a worker
// finishing a batch of the old instance) lands on the new instance: its offset means nothing
// there, and starting at it would skip the new instance's first records.
func (ing *Ingester) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	topics := make([]string, 0, len(offsets))
	for t := range offsets {
		topics = append(topics, t)
	}
	ids, err := ing.lookupTopicIDs(ctx, topics)
	if err != nil {
		// Only a re-created topic needs the check; do not hold up the assignment for it.
		ing.log.Warn("cannot look up topic IDs: committed offsets used without checking their topic instance", "err", err)
		return offsets, nil
	}
	ing.mu.Lock()
	defer ing.mu.Unlock()
	for topic, ps := range offsets {
		id, ok := ids[topic]
		if !ok || id == ([16]byte{}) {
			continue // unknown now, or a broker without topic IDs: nothing to tell apart
		}
		current := topicIDString(id)
		for p := range ps {
			tp := topicPartition{topic, p}
			c, ok := ing.committed[tp]
			if !ok || c.marker.topicID == current {
				continue
			}
			delete(ing.committed, tp)
			ps[p] = kgo.NewOffset().AtStart()
			ing.metrics.staleCommits.WithLabelValues(topic).Inc()
			ing.log.Warn("committed offset was written for a deleted instance of the topic: starting the partition at its beginning",
				"topic", topic, "partition", p, "committed", c.offset, "committed_topic_id", c.marker.topicID, "topic_id", current)
		}
	}
	return offsets, nil
}

// honourClaim ends the worker's first batch where a claim committed before the partition came
// here ends: the previous owner may have inserted that batch under the claim's token already.
func (w *partitionWorker) honourClaim() {
	if w.claimChecked {
		return
	}
	w.claimChecked = true
	c, ok := w.ing.takeCommitted(topicPartition{w.topic, w.partition})
	if !ok || !c.marker.claim {
		return
	}
	if c.marker.topicID != topicIDString(w.batchID) || c.marker.first != w.first {
		// Retention removed the claimed records, or the claim is of another topic instance:
		// there is nothing to cut the same way.
		w.log.Warn("committed claim does not match the partition's first record: ignored",
			"claim_topic_id", c.marker.topicID, "topic_id", topicIDString(w.batchID),
			"claim_first", c.marker.first, "claim_last", c.marker.last, "first", w.first)
		return
	}
	w.forcedEnd = c.marker.last
	w.log.Info("replaying a claimed batch: cutting it where the previous owner claimed it",
		"first", w.first, "last", c.marker.last)
}
