package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/kafkaconn"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

func init() {
	register(subcommand{
		name:    "kafka-local",
		summary: "run kfake, a Kafka-protocol test broker, in the foreground (demo only)",
		setup:   setupKafkaLocal,
	})
}

// runKafkaLocal serves kfake, a Kafka-protocol test broker, so the demo pipeline runs without a
// JVM. It is not Kafka: integration and fault tests use kafkalocal.StartApache instead.
func setupKafkaLocal() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("kafka-local", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake kafka-local --data DIR [--port N]\n\n"+
			"Runs kfake, a Kafka-protocol test broker from franz-go (not Apache Kafka), on 127.0.0.1\n"+
			"until SIGINT/SIGTERM. Topics, records and committed offsets persist in DIR. It creates\n"+
			"packetlake's topics at start (--topics=false: not), so collect and ingest work at once.\n\n")
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "data directory for kfake's topics, records and offsets (required)")
	port := fs.Int("port", 9092, "listening port on 127.0.0.1 (0 picks a free one)")
	createTopics := fs.Bool("topics", true, "create packetlake's topics at start (packets, packetlake-stats, packetlake-flows), as `packetlake topics create` does; existing ones are kept")
	partitions := fs.Int("partitions", 4, "partitions of the packets and flows topics it creates")
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

		b, err := kafkalocal.StartEmbedded(kafkalocal.EmbeddedConfig{DataDir: *data, Port: *port, Logger: logger})
		if err != nil {
			return err
		}
		if *createTopics {
			if err := createLocalTopics(ctx, b.Addr(), int32(*partitions)); err != nil {
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

// createLocalTopics makes packetlake's topics on the local broker, with the default names.
func createLocalTopics(ctx context.Context, addr string, partitions int32) error {
	cl, err := kafkaconn.Config{Brokers: []string{addr}}.NewClient(kafkaconn.Deps{})
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	def := collector.DefaultConfig()
	_, err = kafkaconn.CreateTopics(ctx, cl, kafkaconn.Topics(def.Topic, def.StatsTopic, def.FlowsTopic, partitions), 1)
	return err
}
