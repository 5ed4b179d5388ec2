// Package ingester moves packet frames and collector stats from Kafka into ClickHouse, exactly
// once: each partition is cut into batches of contiguous offsets, each batch is one INSERT with
// a deduplication token derived from its offsets, and offsets are committed only after
// ClickHouse acknowledged (see worker.go for why a replay cuts the same batches).
package ingester

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/kafkaconn"
	"github.com/packetlake/packetlake/internal/lifecycle"
	"github.com/packetlake/packetlake/schema"
)

// Dependencies are what an Ingester uses but does not own.
type Dependencies struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nowhere
}

// Ingester consumes the packet and stats topics as one consumer group member.
type Ingester struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	kafkaOpt []kgo.Opt   // brokers, TLS, SASL, logger and connect hook, from cfg.Kafka
	conn     driver.Conn // migrations, small tables, batch ranges
	writer   Writer      // packets
	client   *kgo.Client

	grown atomic.Int64 // Kafka bytes batches hold past FlushRows/FlushBytes, all partitions (grow.go)

	mu        sync.Mutex
	workers   map[topicPartition]*partitionWorker
	committed map[topicPartition]startCommit // markers fetched at assignment (claim.go)

	idMu      sync.Mutex           // guards what topicid.go keeps
	topicIDs  map[string][16]byte  // looked up at the last assignment
	checking  map[string]bool      // a re-creation check of the topic is running
	lastCheck map[string]time.Time // when the last one ended

	cancel   context.CancelFunc
	pollDone chan struct{}
	stopOnce sync.Once
	phase    lifecycle.Phase
}

// New checks cfg and prepares the connections; nothing is contacted before Start.
func New(cfg Config, deps Dependencies) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := packetColumns(); err != nil {
		return nil, fmt.Errorf("ingester: %w", err)
	}
	m := newMetrics()
	base, err := cfg.Kafka.Options(kafkaconn.Deps{Logger: deps.Logger,
		Metrics: kafkaconn.Metrics{ConnectErrors: m.kafkaErrors.WithLabelValues("connect")}})
	if err != nil {
		return nil, fmt.Errorf("ingester: %w", err)
	}
	conn, err := openNative(cfg)
	if err != nil {
		return nil, fmt.Errorf("ingester: %w", err)
	}
	w, err := newWriter(cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ingester: %w", err)
	}
	m.register(deps.Registerer)
	ing := &Ingester{
		cfg: cfg, log: deps.Logger, metrics: m, kafkaOpt: base,
		conn: conn, writer: w, workers: map[topicPartition]*partitionWorker{},
		committed: map[topicPartition]startCommit{},
		topicIDs:  map[string][16]byte{}, checking: map[string]bool{}, lastCheck: map[string]time.Time{},
	}
	if deps.Registerer != nil {
		deps.Registerer.MustRegister(newStallCollector(ing))
	}
	return ing, nil
}

// Start applies the migrations (if configured) and joins the consumer group. ClickHouse must be
// reachable: the ingester does not consume before it knows the schema is the one it writes.
func (ing *Ingester) Start(ctx context.Context) error {
	if ing.cfg.Migrate || ing.cfg.Cluster != "" {
		if err := ing.migrate(ctx); err != nil {
			return fmt.Errorf("ingester: %w", err)
		}
	}
	cl, err := kgo.NewClient(ing.kafkaOptions()...)
	if err != nil {
		return fmt.Errorf("ingester: kafka client: %w", err)
	}
	ing.client = cl
	pollCtx, cancel := context.WithCancel(context.Background())
	ing.cancel, ing.pollDone = cancel, make(chan struct{})
	go ing.pollLoop(pollCtx)
	go kafkaconn.CheckTopics(pollCtx, cl, ing.log, "nothing is consumed from it until it is created", ing.topics()...)
	go ing.watchStalls(pollCtx)
	ing.phase.SetRunning()
	ing.log.Info("ingester started", "brokers", ing.cfg.Kafka.Brokers, "group", ing.cfg.Group,
		"topic", ing.cfg.Topic, "stats_topic", ing.cfg.StatsTopic, "writer", ing.cfg.Writer, "database", ing.cfg.ClickHouse.Database)
	return nil
}

// Ready is nil from a successful Start (schema applied, group joined) until Stop while no
// partition is stalled (stall.go), else why not.
func (ing *Ingester) Ready() error {
	if err := ing.phase.Ready(); err != nil {
		return err
	}
	return ing.stalled()
}

// migrate applies the migrations (on a cluster: checks them) over a connection of its own: ing.conn names the database in
// its handshake, which fails while the database does not exist yet.
func (ing *Ingester) migrate(ctx context.Context) error {
	cfg := ing.cfg
	cfg.ClickHouse.Database = ""
	conn, err := openNative(cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if ing.cfg.Cluster != "" {
		return schema.CheckCluster(ctx, conn, ing.cfg.ClickHouse.Database, ing.cfg.Cluster)
	}
	return schema.Migrate(ctx, conn, ing.cfg.ClickHouse.Database)
}

// Stop stops polling, leaves the group — every partition is revoked, so each worker inserts
// and commits what it holds, within RevokeTimeout — and closes the connections.
func (ing *Ingester) Stop() error {
	ing.stopOnce.Do(func() {
		ing.phase.SetStopping()
		defer ing.phase.SetStopped()
		if ing.client != nil {
			ing.cancel()
			<-ing.pollDone
			ing.client.Close()
		}
		ing.writer.Close()
		ing.conn.Close()
		ing.log.Info("ingester stopped")
	})
	return nil
}
