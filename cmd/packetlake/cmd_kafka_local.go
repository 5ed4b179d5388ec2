package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/kafkaconn"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

func init() {
	register(subcommand{
		name:    "kafka-local",
		summary: "run kfake, a Kafka-protocol test broker (demo), or with --nodes N a real Apache Kafka cluster, in the foreground",
		setup:   setupKafkaLocal,
	})
}

// runKafkaLocal serves kfake, a Kafka-protocol test broker, so the demo pipeline runs without a
// JVM. It is not Kafka: integration and fault tests use kafkalocal.StartApache instead.
func setupKafkaLocal() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("kafka-local", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake kafka-local --data DIR [--port N] [--nodes N]\n\n"+
			"Runs kfake, a Kafka-protocol test broker from franz-go (not Apache Kafka), on 127.0.0.1\n"+
			"until SIGINT/SIGTERM. Topics, records and committed offsets persist in DIR. It creates\n"+
			"packetlake's topics at start (--topics=false: not), so collect and ingest work at once.\n\n"+
			"With --nodes N, runs instead a real Apache Kafka %s cluster of N KRaft nodes (each broker\n"+
			"and controller; jars from Maven Central, Java 17; 256 MiB heap each) on ports --port,\n"+
			"--port+1, ...; its topics get min(N, 3) replicas and min.insync.replicas=2 from 3 nodes.\n\n", kafkalocal.KafkaVersion)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "data directory for kfake's topics, records and offsets (required)")
	port := fs.Int("port", 9092, "listening port on 127.0.0.1 (0 picks a free one)")
	createTopics := fs.Bool("topics", true, "create packetlake's topics at start (packets, packetlake-stats, packetlake-flows, packetlake-drops), as `packetlake topics create` does; existing ones are kept")
	partitions := fs.Int("partitions", 4, "partitions of the packets and flows topics it creates")
	nodes := fs.Int("nodes", 0, "run a real Apache Kafka cluster of this many nodes instead of kfake")
	logf := addLogFlags(fs)
	return fs, func(ctx context.Context) error {
		if *data == "" || fs.NArg() > 0 {
			fs.Usage()
			return errors.New("--data is required and no positional arguments are accepted")
		}
		logger, err := logf.logger()
		if err != nil {
			return err
		}

		if *nodes > 0 {
			return runKafkaCluster(ctx, *data, *nodes, *port, *createTopics, int32(*partitions), logger)
		}
		b, err := kafkalocal.StartEmbedded(kafkalocal.EmbeddedConfig{DataDir: *data, Port: *port, Logger: logger})
		if err != nil {
			return err
		}
		if *createTopics {
			if err := createLocalTopics(ctx, []string{b.Addr()}, int32(*partitions), 1); err != nil {
				b.Stop()
				return err
			}
		}
		fmt.Printf("kafka-local ready addr=%s data=%s (kfake, a Kafka-protocol test broker)\n", b.Addr(), *data)
		<-ctx.Done()
		logger.Info("kafka-local stopping: saving kfake state", "data", *data)
		b.Stop()
		logger.Info("kafka-local stopped")
		return nil
	}
}

// createLocalTopics makes packetlake's topics on the local brokers, with the default names.
func createLocalTopics(ctx context.Context, addrs []string, partitions int32, replicas int16) error {
	cl, err := kafkaconn.Config{Brokers: addrs}.NewClient(kafkaconn.Deps{})
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	def := collector.DefaultConfig()
	specs := append(kafkaconn.Topics(def.Topic, def.StatsTopic, def.FlowsTopic, partitions), kafkaconn.DropsTopic(def.DropsTopic))
	_, err = kafkaconn.CreateTopics(ctx, cl, specs, replicas)
	return err
}

// runKafkaCluster runs a real Apache Kafka cluster until SIGINT/SIGTERM.
func runKafkaCluster(ctx context.Context, data string, nodes, port int, topics bool, partitions int32, logger *slog.Logger) error {
	cfg := kafkalocal.ClusterConfig{DataDir: data, Nodes: nodes, Logger: logger}
	if port != 0 {
		for i := range nodes {
			cfg.Ports = append(cfg.Ports, port+i)
		}
	}
	c, err := kafkalocal.StartCluster(ctx, cfg)
	if err != nil {
		return err
	}
	if topics {
		if err := createLocalTopics(ctx, c.Addrs(), partitions, int16(min(nodes, 3))); err != nil {
			c.Stop()
			return err
		}
	}
	for _, n := range c.Nodes {
		fmt.Printf("kafka-local node %d ready addr=%s pid=%d log=%s\n", n.NodeID(), n.Addr(), n.Pid(), filepath.Join(data, fmt.Sprintf("node-%d", n.NodeID()), "broker.log"))
	}
	fmt.Printf("kafka-local cluster ready: --brokers %s\n", strings.Join(c.Addrs(), ","))
	<-ctx.Done()
	logger.Info("kafka-local stopping the cluster")
	c.Stop()
	return nil
}
