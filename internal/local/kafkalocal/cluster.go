package kafkalocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterConfig configures StartCluster.
type ClusterConfig struct {
	// DataDir holds one directory per node (node-1, node-2, ...). Reusing it reuses the cluster.
	// Required.
	DataDir string
	// Nodes is the number of combined broker+controller nodes; 0 means 3. With 3 or more, topics
	// get 3 replicas and min.insync.replicas=2 by default, so one node may die without losing an
	// acknowledged (acks=all) record or stopping producers.
	Nodes int
	// Ports are the nodes' client ports on 127.0.0.1, one per node; nil picks free ones.
	Ports []int
	// CacheDir holds the downloaded jars; default cache.Dir().
	CacheDir string
	// Logger reports fetches and lifecycle; nil discards.
	Logger *slog.Logger
}

// Cluster is a KRaft cluster of real Apache Kafka nodes, each a child JVM acting as broker and
// controller (the quorum is every node). Each node can be killed, restarted, paused and
// resumed on its own, by the JVM's own PID, to test failover for real.
type Cluster struct {
	Nodes []*Apache
}

// StartCluster fetches the jars if needed, formats every node's log dir with one shared cluster
// id on first use (kept in DataDir/cluster.id) and starts all nodes together (a controller
// quorum forms only once a majority runs), returning once every broker is registered and
// serving metadata.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start kafka cluster: DataDir is required")
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Nodes < 1 || cfg.Ports != nil && len(cfg.Ports) != cfg.Nodes {
		return nil, fmt.Errorf("start kafka cluster: %d nodes with %d ports", cfg.Nodes, len(cfg.Ports))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("start kafka cluster: %w", err)
	}
	id, err := clusterID(filepath.Join(cfg.DataDir, "cluster.id"))
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	var voters []string
	for i := range cfg.Nodes {
		nc := ApacheConfig{DataDir: filepath.Join(cfg.DataDir, fmt.Sprintf("node-%d", i+1)), CacheDir: cfg.CacheDir}
		if cfg.Ports != nil {
			nc.Port = cfg.Ports[i]
		}
		if cfg.Logger != nil {
			nc.Logger = cfg.Logger.With("node", i+1)
		}
		a, err := newApache(ctx, nc, 256)
		if err != nil {
			return nil, err
		}
		a.props.nodeID, a.props.replicas = i+1, min(3, cfg.Nodes)
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, a.props.cport))
		c.Nodes = append(c.Nodes, a)
	}
	for _, a := range c.Nodes {
		a.props.voters = strings.Join(voters, ",")
		if err := a.prepare(ctx, id); err != nil {
			return nil, err
		}
	}
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, a := range c.Nodes {
		wg.Go(func() { errs[i] = a.start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, fmt.Errorf("start kafka cluster: %w", err)
	}
	return c, nil
}

// clusterID reads the cluster id every node is formatted with, making it on first use.
func clusterID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read kafka cluster id: %w", err)
	}
	id, err := kafkaUUID()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("save kafka cluster id: %w", err)
	}
	return id, nil
}

// Addrs are the nodes' client addresses, the seed brokers for clients.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, a := range c.Nodes {
		out = append(out, a.Addr())
	}
	return out
}

// Node returns the node with KRaft id id (1-based), or nil.
func (c *Cluster) Node(id int) *Apache {
	if id < 1 || id > len(c.Nodes) {
		return nil
	}
	return c.Nodes[id-1]
}

// Stop stops every node cleanly, all at once (a controlled shutdown needs the quorum alive).
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, a := range c.Nodes {
		wg.Go(a.Stop)
	}
	wg.Wait()
}

// askTimeout bounds one question to the cluster (a dead node must not hang the asker).
const askTimeout = 10 * time.Second

// client is a short-lived client seeded with every node that runs.
func (c *Cluster) client() (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.DialTimeout(2*time.Second), kgo.RetryTimeout(5*time.Second))
}

// ActiveController asks the cluster which node leads the KRaft metadata quorum (DescribeQuorum,
// KIP-595/836). A Metadata response does not say: in KRaft it names a random broker as
// "controller", since clients cannot reach the controllers.
func (c *Cluster) ActiveController(ctx context.Context) (int, error) {
	return ask(ctx, c, func(ctx context.Context, cl *kgo.Client) (int, error) { return activeController(ctx, cl) })
}

// ask runs one question with a fresh client, bounded by askTimeout.
func ask(ctx context.Context, c *Cluster, q func(context.Context, *kgo.Client) (int, error)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	cl, err := c.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	return q(ctx, cl)
}

func activeController(ctx context.Context, cl *kgo.Client) (int, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("describe kafka quorum: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, fmt.Errorf("describe kafka quorum: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("describe kafka quorum: %w", err)
			}
			if p.LeaderID >= 0 {
				return int(p.LeaderID), nil
			}
		}
	}
	return 0, errors.New("describe kafka quorum: no leader")
}

// PartitionLeader is the node leading topic's partition, from fresh metadata.
func (c *Cluster) PartitionLeader(ctx context.Context, topic string, partition int32) (int, error) {
	return ask(ctx, c, func(ctx context.Context, cl *kgo.Client) (int, error) {
		return partitionLeader(ctx, cl, topic, partition)
	})
}

func partitionLeader(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int, error) {
	m, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	td, ok := m.Topics[topic]
	if !ok || td.Err != nil {
		return 0, fmt.Errorf("metadata of %s: %v", topic, td.Err)
	}
	pd, ok := td.Partitions[partition]
	if !ok || pd.Err != nil || pd.Leader < 0 {
		return 0, fmt.Errorf("metadata of %s/%d: no leader (%v)", topic, partition, pd.Err)
	}
	return int(pd.Leader), nil
}

// CreateTopic creates topic with partitions, replicas and min.insync.replicas, waiting until
// every partition has a leader. An existing topic is not an error.
func (c *Cluster) CreateTopic(ctx context.Context, name string, partitions int32, replicas int16, minISR int) error {
	if err := CreateTopicWith(ctx, c.Addrs(), name, partitions, replicas, minISR); err != nil {
		return err
	}
	for p := range partitions {
		for {
			if _, err := c.PartitionLeader(ctx, name, p); err == nil {
				break
			} else if ctx.Err() != nil {
				return fmt.Errorf("topic %s partition %d has no leader: %w", name, p, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
