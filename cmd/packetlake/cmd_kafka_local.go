package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

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
			"until SIGINT/SIGTERM. Topics, records and committed offsets persist in DIR.\n\n")
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "data directory for kfake's topics, records and offsets (required)")
	port := fs.Int("port", 9092, "listening port on 127.0.0.1 (0 picks a free one)")
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
		fmt.Printf("kafka-local ready addr=%s data=%s (kfake, a Kafka-protocol test broker)\n", b.Addr(), *data)
		<-ctx.Done()
		logger.Info("kafka-local stopping: saving kfake state", "data", *data)
		b.Stop()
		logger.Info("kafka-local stopped")
		return nil
	}
}
