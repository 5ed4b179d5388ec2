package kafkaconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// dialTimeout bounds one TCP (and TLS) connection attempt to a broker.
const dialTimeout = 10 * time.Second

// Deps are what a client reports through, both owned by the component that makes it.
type Deps struct {
	Logger  *slog.Logger // franz-go's warnings and errors (nil discards)
	Metrics Metrics      // broker connections and their failures
}

// Options returns the franz-go options every packetlake client starts from: the seed brokers,
// TLS and SASL, franz-go's log on d.Logger and the connect hook on d.Metrics. The caller appends
// what its client does (produce, consume); its own kgo.WithHooks add to the connect hook.
func (c Config) Options(d Deps) ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.WithLogger(kgoLogger{log.With("component", "kafka")}),
		kgo.WithHooks(connectHook{d.Metrics}),
		// When a broker dies, its partitions get new leaders within seconds (3 s on a KRaft
		// cluster with a 3 s broker session); franz-go's default 5 s minimum between metadata
		// refreshes added ~4 s to every such failover. 250 ms still caps refreshes at 4/s.
		kgo.MetadataMinAge(250 * time.Millisecond),
		// Requests other than produce (metadata, offset commits, group calls) give up after
		// this long; the callers retry on their own terms (the ingester until its partition is
		// revoked). Longer than a controller failover (7-8 s measured) plus a leader's.
		kgo.RetryTimeout(30 * time.Second),
	}
	tc, err := c.TLS.Config(tlsFlag)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if tc != nil {
		opts = append(opts, kgo.Dialer((&tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: tc}).DialContext))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism()))
	}
	return opts, nil
}

// NewClient is a client from Options and the caller's own options.
func (c Config) NewClient(d Deps, opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := c.Options(d)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", c.Brokers, err)
	}
	return cl, nil
}

// kgoLogger sends franz-go's warnings and errors (a broker that cannot be reached, a TLS
// mismatch) to slog; its info lines (every group join, every heartbeat decision) go to debug.
// franz-go's plugin/kslog maps info to info, which would bury the daemons' own lines, hence
// this adapter of a few lines.
type kgoLogger struct{ l *slog.Logger }

// Level asks franz-go for info lines only when they would be written (at debug).
func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	}
	k.l.Log(context.Background(), lvl, msg, keyvals...)
}
