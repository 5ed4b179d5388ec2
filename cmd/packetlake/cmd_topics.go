package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/kafkaconn"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register(subcommand{
		name:    "topics",
		summary: "topics create|check: create packetlake's Kafka topics with their configs, or check them",
		setup:   setupTopics,
	})
}

func setupTopics() (*flag.FlagSet, func(context.Context) error) {
	def := collector.DefaultConfig()
	fs := flag.NewFlagSet("topics", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake topics create|check --brokers HOST:PORT[,...] [--partitions N] [--replication-factor R]\n\n"+
			"create makes the topics packetlake uses that do not exist yet: the packet frames (--topic,\n"+
			"--partitions: ingesters scale up to it), the collectors' stats (--stats-topic, 1 partition)\n"+
			"and flow counters (--flows-topic, --partitions), kernel drop counts (--drops-topic, 1\n"+
			"partition), with cleanup.policy=delete,\n"+
			"compression.type=producer (the collector compresses), retention.ms 24 h (stats 7 days),\n"+
			"max.message.bytes=%s and, at a replication factor of 3 or more, min.insync.replicas=%s.\n"+
			"Existing topics are left as they are. check prints each topic's partitions, replication\n"+
			"factor and configs and names what falls short; the exit status is 1 if anything does.\n"+
			"The Kafka TLS/SASL flags are those of collect and ingest; the user needs Create and\n"+
			"DescribeConfigs on the topics (README, Security).\n\n", kafkaconn.MaxMessageBytes, kafkaconn.MinISR)
		fs.PrintDefaults()
	}
	kafka := addKafkaFlags(fs)
	topic := fs.String("topic", def.Topic, "topic of the packet frames")
	stats := fs.String("stats-topic", def.StatsTopic, "topic of the collector stats")
	flows := fs.String("flows-topic", def.FlowsTopic, "topic of the flow counters (empty: none)")
	drops := fs.String("drops-topic", def.DropsTopic, "topic of the kernel drop counts, 1 partition (empty: none)")
	partitions := fs.Int("partitions", 12, "partitions of the packets and flows topics")
	rf := fs.Int("replication-factor", -1, "replication factor (-1: the brokers' default.replication.factor)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on the whole command")
	logf := addLogFlags(fs)
	return fs, func(ctx context.Context) error {
		if fs.NArg() != 1 || (fs.Arg(0) != "create" && fs.Arg(0) != "check") {
			fs.Usage()
			return errors.New("want `topics create` or `topics check`")
		}
		if len(kafka.Brokers) == 0 {
			return errors.New("--brokers is required")
		}
		if *partitions < 1 || *rf == 0 || *rf < -1 || *rf > 32767 {
			return errors.New("--partitions must be at least 1 and --replication-factor at least 1 (or -1)")
		}
		logger, err := logf.logger()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		cl, err := kafka.NewClient(kafkaconn.Deps{Logger: logger})
		if err != nil {
			return err
		}
		defer cl.Close()
		specs := kafkaconn.Topics(*topic, *stats, *flows, int32(*partitions))
		if *drops != "" {
			specs = append(specs, kafkaconn.DropsTopic(*drops))
		}
		if fs.Arg(0) == "check" && !flagSet(fs, "partitions") {
			for i := range specs {
				specs[i].Partitions = 1 // any count will do unless --partitions asks for more
			}
		}
		if fs.Arg(0) == "create" {
			res, err := kafkaconn.CreateTopics(ctx, cl, specs, int16(*rf))
			for _, r := range res {
				if r.Created {
					fmt.Printf("created %s: %d partitions, replication factor %d\n", r.Name, r.Partitions, r.ReplicationFactor)
				} else {
					fmt.Printf("exists %s: left as it is\n", r.Name)
				}
			}
			if err != nil {
				return err
			}
		}
		return checkTopics(ctx, cl, specs)
	}
}

// checkTopics prints every topic's state and fails when one falls short.
func checkTopics(ctx context.Context, cl *kgo.Client, specs []kafkaconn.TopicSpec) error {
	states, err := kafkaconn.CheckTopicSpecs(ctx, cl, specs)
	if err != nil {
		return err
	}
	bad := 0
	for _, s := range states {
		fmt.Println(s)
		for _, p := range s.Problems {
			if s.Exists {
				fmt.Printf("  problem: %s\n", p)
			}
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d problem(s) with the topics", bad)
	}
	return nil
}

// flagSet reports whether the flag was given (command line, environment or config file).
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
