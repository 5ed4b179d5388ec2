package ingester

import (
	"errors"
	"fmt"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/kafkaconn"
)

// Config configures an Ingester. Start from DefaultConfig.
type Config struct {
	// Kafka is the brokers (required) and their TLS and SASL settings (zero: plaintext, no
	// authentication).
	Kafka kafkaconn.Config
	// Group is the Kafka consumer group. Members of one group share the partitions.
	Group string
	// Topic carries the collectors' packet frames (one Kafka record = one record frame).
	Topic string
	// StatsTopic carries the collectors' JSON stats messages; "" consumes none.
	StatsTopic string
	// FlowsTopic carries the collectors' exact flow counters (JSON deltas, into table flows);
	// "" consumes none.
	FlowsTopic string
	// DropsTopic carries the collectors' kernel drop counts (JSON deltas, into table drops);
	// "" consumes none.
	DropsTopic string

	// ClickHouse is where the tables are. Its native address (Addr) serves migrations, dead
	// letters, stats, batch ranges and the native writer; the arrow-http writer needs HTTPAddr.
	// Its Database is created (Atomic) by the migrations.
	ClickHouse chconn.Config
	// Migrate applies the schema migrations in Start.
	Migrate bool
	// Cluster, if set, names the ClickHouse cluster the database is laid out on (Distributed
	// tables; schema apply --cluster or schema-cluster). Start then applies no DDL to the one
	// node it talks to: it checks the schema is current there and fails if not (Migrate is
	// ignored).
	Cluster string

	// A partition's batch is inserted once it holds FlushRows rows or FlushBytes bytes of
	// Kafka values, or FlushAge after its first record was fetched. Every batch's range is claimed in
	// Kafka before its INSERT (claim.go), so a replay cuts it where it was cut, whatever these
	// settings are on the member that replays it. Packets' parts under 150k rows are Compact
	// (migration 0901), which spares ClickHouse most of an insert's file creation: a FlushRows
	// of 150k or more makes the inserts Wide again unless that threshold is raised with it.
	FlushRows  int
	FlushBytes int
	FlushAge   time.Duration
	// MaxBatchRows: while a partition is behind (its last fetch's high watermark is past the
	// batch), a batch that reached FlushRows or FlushBytes keeps growing up to this many rows,
	// so a backlog or a high rate is stored in fewer INSERTs, each of which costs ClickHouse
	// ~40 ms of CPU with every view whatever its size (grow.go; BENCHMARKS.md, "batch
	// branch"). At or below FlushRows nothing grows. FlushAge still cuts a growing batch, and a
	// partition that caught up has its full batch cut at once, so a trickle's latency is
	// today's. 250k, not more: 500k saved ClickHouse no more than 250k with merges stopped and
	// cost the GC more. Inserts over 150k rows are Wide parts unless packets'
	// min_rows_for_wide_part (migration 0901) is raised with it; measured, they still pay.
	MaxBatchRows int
	// GrowBudget bounds the Kafka value bytes that all partitions' batches hold past their
	// FlushRows/FlushBytes together; a batch that would go over it is cut. The live heap grows
	// by about 2-3 × GrowBudget at most (a row's columns and its Kafka record, kept for a
	// bisection, ~2 heap bytes per frame byte, plus the bigger INSERT bodies: ingester/BENCH.md).
	GrowBudget int
	// Writer is WriterArrowHTTP or WriterNative.
	Writer string

	// MaxQueuedBytes bounds the records fetched for one partition but not yet in a batch:
	// above it the partition's fetching is paused (e.g. while ClickHouse is down), so memory
	// stays bounded at about partitions × (MaxQueuedBytes + 2 × FlushBytes) + 3 × GrowBudget:
	// a batch holds its rows and, for a bisection (bisect.go), the Kafka records they came from.
	MaxQueuedBytes int
	// InsertTimeout bounds one INSERT.
	InsertTimeout time.Duration
	// RetryBackoffMax caps the exponential backoff between retries of a failed insert or commit.
	RetryBackoffMax time.Duration
	// SessionTimeout is the consumer group session: a member that crashed (kill -9) keeps its
	// partitions this long before the group reassigns them. Kafka's default 45 s; the broker
	// accepts no less than 6 s.
	SessionTimeout time.Duration
	// RevokeTimeout bounds how long a revoked partition (rebalance or Stop) may take to insert
	// and commit its last batch. After it the batch is abandoned uncommitted and the next owner
	// replays it; keep it well under the group's rebalance timeout (60 s).
	RevokeTimeout time.Duration
	// PoisonRetries is how many times in a row ClickHouse must refuse a batch because of its
	// data (a parse, type or constraint error: errclass.go) before the batch is bisected to put
	// the records it refuses into dead_letters (bisect.go). Other errors are retried forever.
	PoisonRetries int
	// StallTimeout: a partition that has records to store but has committed nothing for this
	// long is stalled: Ready (/healthz) reports it with its last error (stall.go).
	StallTimeout time.Duration
}

// DefaultConfig returns the defaults; Kafka.Brokers, Group and the ClickHouse addresses are left to set.
func DefaultConfig() Config {
	return Config{
		Topic:           "packets",
		StatsTopic:      "packetlake-stats",
		FlowsTopic:      "packetlake-flows",
		DropsTopic:      "packetlake-drops",
		ClickHouse:      chconn.Config{Database: "packetlake"},
		Migrate:         true,
		FlushRows:       100_000,
		FlushBytes:      32 << 20,
		FlushAge:        time.Second,
		MaxBatchRows:    250_000,
		GrowBudget:      128 << 20,
		Writer:          WriterArrowHTTP,
		MaxQueuedBytes:  64 << 20,
		InsertTimeout:   60 * time.Second,
		RetryBackoffMax: 5 * time.Second,
		SessionTimeout:  45 * time.Second,
		RevokeTimeout:   20 * time.Second,
		PoisonRetries:   3,
		StallTimeout:    5 * time.Minute,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("ingester: %w", err)
	}
	switch {
	case c.Group == "":
		return errors.New("ingester: no consumer group")
	case c.Topic == "":
		return errors.New("ingester: no topic")
	case c.Topic == c.StatsTopic:
		return errors.New("ingester: topic and stats topic are the same")
	case c.FlowsTopic != "" && (c.FlowsTopic == c.Topic || c.FlowsTopic == c.StatsTopic):
		return errors.New("ingester: the flows topic must differ from the packet and stats topics")
	case c.DropsTopic != "" && (c.DropsTopic == c.Topic || c.DropsTopic == c.StatsTopic || c.DropsTopic == c.FlowsTopic):
		return errors.New("ingester: the drops topic must differ from the packet, stats and flows topics")
	case c.ClickHouse.Addr == "":
		return errors.New("ingester: no ClickHouse native address")
	case c.Writer == WriterArrowHTTP && c.ClickHouse.HTTPAddr == "":
		return errors.New("ingester: the arrow-http writer needs the ClickHouse HTTP address")
	case c.Writer != WriterArrowHTTP && c.Writer != WriterNative:
		return fmt.Errorf("ingester: unknown writer %q", c.Writer)
	case c.ClickHouse.Database == "":
		return errors.New("ingester: no database")
	case c.FlushRows <= 0 || c.FlushBytes <= 0 || c.FlushAge <= 0:
		return errors.New("ingester: FlushRows, FlushBytes and FlushAge must be positive")
	case c.MaxBatchRows < 0 || c.GrowBudget < 0:
		return errors.New("ingester: MaxBatchRows and GrowBudget must not be negative")
	case c.MaxQueuedBytes <= 0 || c.InsertTimeout <= 0 || c.RetryBackoffMax <= 0 || c.RevokeTimeout <= 0 || c.SessionTimeout <= 0:
		return errors.New("ingester: MaxQueuedBytes, InsertTimeout, RetryBackoffMax, SessionTimeout and RevokeTimeout must be positive")
	case c.PoisonRetries <= 0 || c.StallTimeout <= 0:
		return errors.New("ingester: PoisonRetries and StallTimeout must be positive")
	}
	return c.ClickHouse.Validate()
}
