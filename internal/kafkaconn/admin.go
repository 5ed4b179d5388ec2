package kafkaconn

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicSpec is one topic packetlake produces to and consumes from, with the configs
// `packetlake topics create` gives it.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Configs are topic-level overrides (retention.ms, compression.type, ...).
	Configs map[string]string
}

// Topic retention: the ingester normally reads a frame within seconds; retention is how long
// an ingester outage (or a ClickHouse outage, which stops the ingester's commits) may last
// before data is lost. Stats and flows are small, so they keep a week.
const (
	PacketsRetention = "86400000"  // 24 h
	SmallRetention   = "604800000" // 7 days
	// MaxMessageBytes admits the collector's largest frame (900 KiB) with room for the batch
	// overhead; it equals Kafka's default, written down so a broker default lowered elsewhere
	// does not reject frames.
	MaxMessageBytes = "1048588"
)

// Topics is packetlake's set of topics: packet frames (partitions: the ingesters scale up to
// it), the collectors' stats (one partition: a few messages per collector per minute) and their
// flow counters (partitions like packets). Names come from the collector's flags.
func Topics(packets, stats, flows string, partitions int32) []TopicSpec {
	common := func(retention string) map[string]string {
		return map[string]string{
			"cleanup.policy": "delete",
			// The collector compresses its batches (lz4 by default, --compression); the broker
			// keeps them as they come instead of recompressing.
			"compression.type":  "producer",
			"retention.ms":      retention,
			"max.message.bytes": MaxMessageBytes,
		}
	}
	specs := []TopicSpec{
		{Name: packets, Partitions: partitions, Configs: common(PacketsRetention)},
		{Name: stats, Partitions: 1, Configs: common(SmallRetention)},
	}
	if flows != "" {
		specs = append(specs, TopicSpec{Name: flows, Partitions: partitions, Configs: common(PacketsRetention)})
	}
	return specs
}

// MinISR is min.insync.replicas for topics with a replication factor of 3 or more: with
// acks=all (the collector's idempotent producer) an acknowledged frame is on two brokers.
const MinISR = "2"

// TopicResult is what CreateTopics did with one topic.
type TopicResult struct {
	Name              string
	Created           bool // false: it existed already (left as it is)
	Partitions        int32
	ReplicationFactor int16
}

// CreateTopics creates the topics that do not exist yet, with replicationFactor (-1: the
// broker's default.replication.factor) and the specs' configs, plus min.insync.replicas=2 on
// topics whose replication factor turns out to be 3 or more. Existing topics are left
// untouched (CheckTopicSpecs reports how they differ).
func CreateTopics(ctx context.Context, cl *kgo.Client, specs []TopicSpec, replicationFactor int16) ([]TopicResult, error) {
	adm := kadm.NewClient(cl)
	var out []TopicResult
	for _, s := range specs {
		cfg := map[string]*string{}
		for k, v := range s.Configs {
			cfg[k] = &v
		}
		if replicationFactor >= 3 {
			v := MinISR
			cfg["min.insync.replicas"] = &v
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, replicationFactor, cfg, s.Name)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			out = append(out, TopicResult{Name: s.Name})
			continue
		}
		if err != nil {
			msg := ""
			if resp.ErrMessage != "" {
				msg = " (" + resp.ErrMessage + ")"
			}
			return out, fmt.Errorf("create topic %s (%d partitions, replication factor %d): %w%s", s.Name, s.Partitions, replicationFactor, err, msg)
		}
		if replicationFactor < 0 && resp.ReplicationFactor >= 3 {
			// The broker's default replication factor applied: set the ISR now.
			v := MinISR
			r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: &v}}, s.Name)
			if err == nil {
				_, err = r.On(s.Name, nil)
			}
			if err != nil {
				return out, fmt.Errorf("topic %s: set min.insync.replicas: %w", s.Name, err)
			}
		}
		out = append(out, TopicResult{Name: s.Name, Created: true, Partitions: resp.NumPartitions, ReplicationFactor: resp.ReplicationFactor})
	}
	return out, waitTopics(ctx, adm, specs)
}

// waitTopics returns once every broker's metadata lists the topics with leaders, so that a
// producer started right after CreateTopics finds them (creation is asynchronous in Kafka).
func waitTopics(ctx context.Context, adm *kadm.Client, specs []TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	for {
		details, err := adm.ListTopics(ctx, names...)
		ready := err == nil
		for _, n := range names {
			d, ok := details[n]
			ready = ready && ok && d.Err == nil && len(d.Partitions) > 0
			for _, p := range d.Partitions {
				ready = ready && p.Leader >= 0 && p.Err == nil
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v created but not yet in the brokers' metadata: %w", names, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TopicState is one topic as the brokers have it, with what is wrong with it for packetlake.
type TopicState struct {
	Name              string
	Exists            bool
	Partitions        int
	ReplicationFactor int
	Configs           map[string]string // the specs' keys and min.insync.replicas, as the broker reports them
	Problems          []string
}

// CheckTopicSpecs describes the topics and names every way they fall short: missing, fewer
// partitions than asked, retention or message size below the spec, or a replication factor of
// 3+ with min.insync.replicas below 2 (then acks=all can hold a frame on one broker only).
func CheckTopicSpecs(ctx context.Context, cl *kgo.Client, specs []TopicSpec) ([]TopicState, error) {
	adm := kadm.NewClient(cl)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []TopicState
	for _, s := range specs {
		st := TopicState{Name: s.Name, Configs: map[string]string{}}
		d, ok := details[s.Name]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			st.Problems = append(st.Problems, "does not exist (packetlake topics create)")
			out = append(out, st)
			continue
		}
		if d.Err != nil {
			st.Problems = append(st.Problems, "not usable: "+d.Err.Error())
			out = append(out, st)
			continue
		}
		st.Exists, st.Partitions = true, len(d.Partitions)
		for _, p := range d.Partitions {
			st.ReplicationFactor = max(st.ReplicationFactor, len(p.Replicas))
		}
		if st.Partitions < int(s.Partitions) {
			st.Problems = append(st.Problems, fmt.Sprintf("%d partitions, fewer than the %d asked for (kafka-topics.sh --alter --partitions)", st.Partitions, s.Partitions))
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, s.Name)
		if err != nil {
			return nil, fmt.Errorf("describe configs of topic %s: %w", s.Name, err)
		}
		rc, err := rcs.On(s.Name, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return nil, fmt.Errorf("describe configs of topic %s: %w", s.Name, err)
		}
		for _, c := range rc.Configs {
			if _, want := s.Configs[c.Key]; want || c.Key == "min.insync.replicas" {
				st.Configs[c.Key] = c.MaybeValue()
			}
		}
		for _, k := range []string{"retention.ms", "max.message.bytes"} {
			want, _ := strconv.ParseInt(s.Configs[k], 10, 64)
			got, err := strconv.ParseInt(st.Configs[k], 10, 64)
			if err == nil && got >= 0 && got < want {
				st.Problems = append(st.Problems, fmt.Sprintf("%s=%d, less than packetlake's %d", k, got, want))
			}
		}
		if isr, _ := strconv.Atoi(st.Configs["min.insync.replicas"]); st.ReplicationFactor >= 3 && isr < 2 {
			st.Problems = append(st.Problems, fmt.Sprintf("replication factor %d but min.insync.replicas=%d: an acknowledged frame may live on one broker only (set it to 2)", st.ReplicationFactor, isr))
		}
		out = append(out, st)
	}
	return out, nil
}

// String is one line per topic for `packetlake topics check`.
func (s TopicState) String() string {
	if !s.Exists {
		return s.Name + ": " + s.Problems[0]
	}
	keys := make([]string, 0, len(s.Configs))
	for k := range s.Configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	line := fmt.Sprintf("%s: %d partitions, replication factor %d", s.Name, s.Partitions, s.ReplicationFactor)
	for _, k := range keys {
		line += " " + k + "=" + s.Configs[k]
	}
	return line
}
