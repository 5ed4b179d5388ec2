package kafkaconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCreateTopicsReplicated: at a replication factor of 3, the topics get
// min.insync.replicas=2 (acks=all then means two brokers), explicitly or through the brokers'
// default.replication.factor; CheckTopicSpecs names a replicated topic without it. Against kfake
// with three brokers (the Apache launcher runs one; test/e2e covers the single-broker path).
func TestCreateTopicsReplicated(t *testing.T) {
	for name, c := range map[string]struct {
		rf   int16
		opts []kfake.Opt
	}{
		"explicit":       {3, nil},
		"broker default": {-1, []kfake.Opt{kfake.BrokerConfigs(map[string]string{"default.replication.factor": "3"})}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cl := threeBrokers(t, c.opts...)
			specs := Topics("p", "s", "f", 4)
			res, err := CreateTopics(ctx, cl, specs, c.rf)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !r.Created || r.ReplicationFactor != 3 {
					t.Errorf("%+v, want created with replication factor 3", r)
				}
			}
			states, err := CheckTopicSpecs(ctx, cl, specs)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range states {
				if s.Configs["min.insync.replicas"] != MinISR || s.ReplicationFactor != 3 || len(s.Problems) > 0 {
					t.Errorf("%s", s)
				}
			}
		})
	}
	// A replicated topic made elsewhere without the ISR setting is named.
	ctx, cl := threeBrokers(t)
	bare := []TopicSpec{{Name: "bare", Partitions: 1}}
	one := "1"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &one}, "bare"); err != nil {
		t.Fatal(err)
	}
	states, err := CheckTopicSpecs(ctx, cl, bare)
	if err != nil {
		t.Fatal(err)
	}
	if len(states[0].Problems) != 1 || !strings.Contains(states[0].Problems[0], "min.insync.replicas=1") {
		t.Errorf("%s: problems %q, want min.insync.replicas named", states[0], states[0].Problems)
	}
}

// threeBrokers is a client of a three-broker kfake cluster that lives as long as the test.
func threeBrokers(t *testing.T, opts ...kfake.Opt) (context.Context, *kgo.Client) {
	t.Helper()
	cluster, err := kfake.NewCluster(append(opts, kfake.NumBrokers(3))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, cl
}
