package kafkalocal

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CreateTopic creates topic name with the given partitions on the broker at addr, with the
// broker's default replication factor (1 on both local brokers). Both brokers run with
// auto-creation off, so producers need this first. An existing topic is not an error, whatever
// its partition count, so every component and test can call it at start-up.
func CreateTopic(ctx context.Context, addr, name string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("create topic %s: client for %s: %w", name, addr, err)
	}
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, name)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s (%d partitions) on %s: %w", name, partitions, addr, err)
	}
	return nil
}

// CreateTopicWith creates topic name on the cluster of brokers with the given partitions,
// replication factor and min.insync.replicas. An existing topic is not an error.
func CreateTopicWith(ctx context.Context, brokers []string, name string, partitions int32, replicas int16, minISR int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("create topic %s: client for %v: %w", name, brokers, err)
	}
	defer cl.Close()
	isr := fmt.Sprint(minISR)
	_, err = kadm.NewClient(cl).CreateTopic(ctx, partitions, replicas, map[string]*string{"min.insync.replicas": &isr}, name)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s (%d partitions, %d replicas) on %v: %w", name, partitions, replicas, brokers, err)
	}
	return nil
}
