package chlocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultClusterName is the cluster's name in remote_servers when ClusterConfig.Name is empty.
const DefaultClusterName = "packetlake_cluster"

// ClusterConfig describes a sharded ClickHouse cluster of `packetlake clickhouse-local` children.
type ClusterConfig struct {
	Binary string // the packetlake binary; required
	// DataDir holds shard-1, shard-2, ...: each server's config.xml, data and log. Required.
	DataDir string
	// Shards is the number of servers, one per shard (libchdb has no replication: no Keeper, no
	// interserver port); 0 means 2.
	Shards int
	// Name is the cluster in remote_servers (what Distributed tables and `schema apply
	// --cluster` name); "" means DefaultClusterName.
	Name string
	// TCPPorts and HTTPPorts fix the servers' ports, one per shard; nil picks free ones.
	TCPPorts, HTTPPorts []int
	CacheDir            string // "" = the children's default (cache.Dir())
	// OnUnexpectedExit is given each server's SpawnConfig.OnUnexpectedExit, with its shard
	// number (1-based); nil reports nothing.
	OnUnexpectedExit func(shard, pid int, err error, stderrTail string)
	// Supervise restarts a server that exits by itself (not by Kill, Restart or Stop), as
	// systemd's Restart=always would; Crashes counts them.
	Supervise bool
}

// Cluster is a sharded ClickHouse: one server per shard on loopback, each with a configuration
// file naming every shard in remote_servers and its own {shard} and {replica} macros, so a
// Distributed table on any server spreads inserts over all of them and reads them all. Each
// server is a child process that can be killed and restarted on its own.
type Cluster struct {
	cfg     ClusterConfig
	mu      sync.Mutex
	servers []*Process
	crashes int
	stopped bool
}

// StartCluster writes each server's configuration and starts all servers, returning once every
// one answers. On failure nothing is left running.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Binary == "" || cfg.DataDir == "" {
		return nil, errors.New("chlocal: ClusterConfig.Binary and DataDir are required")
	}
	if cfg.Shards == 0 {
		cfg.Shards = 2
	}
	if cfg.Name == "" {
		cfg.Name = DefaultClusterName
	}
	if !isIdentifier(cfg.Name) {
		return nil, fmt.Errorf("chlocal: cluster name %q is not a plain identifier", cfg.Name)
	}
	if cfg.Shards < 1 || cfg.TCPPorts != nil && len(cfg.TCPPorts) != cfg.Shards || cfg.HTTPPorts != nil && len(cfg.HTTPPorts) != cfg.Shards {
		return nil, fmt.Errorf("chlocal: %d shards with %d tcp and %d http ports", cfg.Shards, len(cfg.TCPPorts), len(cfg.HTTPPorts))
	}
	// Every server's remote_servers names every other one: all ports are fixed before any start.
	pick := func(given []int) ([]int, error) {
		if given != nil {
			return append([]int(nil), given...), nil
		}
		out := make([]int, cfg.Shards)
		for i := range out {
			if err := setFreePort(&out[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var err error
	if cfg.TCPPorts, err = pick(cfg.TCPPorts); err != nil {
		return nil, err
	}
	if cfg.HTTPPorts, err = pick(cfg.HTTPPorts); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, servers: make([]*Process, cfg.Shards)}
	for i := range cfg.Shards {
		if err := os.MkdirAll(c.shardDir(i+1), 0o755); err != nil {
			return nil, fmt.Errorf("chlocal: %w", err)
		}
		if err := os.WriteFile(c.ConfigFile(i+1), []byte(clusterConfigXML(cfg, i+1)), 0o644); err != nil {
			return nil, fmt.Errorf("chlocal: write cluster config: %w", err)
		}
	}
	errs := make([]error, cfg.Shards)
	var wg sync.WaitGroup
	for i := range cfg.Shards {
		wg.Go(func() { errs[i] = c.Restart(ctx, i+1) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// clusterConfigXML is shard's configuration: the whole cluster in remote_servers (one replica
// per shard, so internal_replication is irrelevant), its macros, and a pool for background
// Distributed sends, which clickhouse-local sizes 0 (rows of an asynchronous insert would sit in
// system.distribution_queue forever).
func clusterConfigXML(cfg ClusterConfig, shard int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Written by packetlake chlocal: shard %d of %d of cluster %s. -->\n<clickhouse>\n", shard, cfg.Shards, cfg.Name)
	fmt.Fprintf(&b, "  <remote_servers>\n    <%s>\n", cfg.Name)
	for i, port := range cfg.TCPPorts {
		fmt.Fprintf(&b, "      <shard><!-- %d -->\n        <internal_replication>true</internal_replication>\n"+
			"        <replica><host>127.0.0.1</host><port>%d</port></replica>\n      </shard>\n", i+1, port)
	}
	fmt.Fprintf(&b, "    </%s>\n  </remote_servers>\n", cfg.Name)
	fmt.Fprintf(&b, "  <macros>\n    <cluster>%s</cluster>\n    <shard>%d</shard>\n    <replica>shard-%d</replica>\n  </macros>\n", cfg.Name, shard, shard)
	b.WriteString("  <background_distributed_schedule_pool_size>4</background_distributed_schedule_pool_size>\n</clickhouse>\n")
	return b.String()
}

func isIdentifier(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (c *Cluster) shardDir(shard int) string {
	return filepath.Join(c.cfg.DataDir, fmt.Sprintf("shard-%d", shard))
}

// Name is the cluster's name in remote_servers.
func (c *Cluster) Name() string { return c.cfg.Name }

// Shards is the number of servers.
func (c *Cluster) Shards() int { return c.cfg.Shards }

// ConfigFile is shard's configuration file (1-based).
func (c *Cluster) ConfigFile(shard int) string { return filepath.Join(c.shardDir(shard), "config.xml") }

// LogPath is where shard's server writes its stderr.
func (c *Cluster) LogPath(shard int) string { return filepath.Join(c.shardDir(shard), "server.log") }

// Server is shard's current process (1-based); it changes on Restart.
func (c *Cluster) Server(shard int) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[shard-1]
}

// TCPAddrs and HTTPAddrs are every server's addresses, in shard order; they never change.
func (c *Cluster) TCPAddrs() []string { return addrs(c.cfg.TCPPorts) }

// HTTPAddrs: see TCPAddrs.
func (c *Cluster) HTTPAddrs() []string { return addrs(c.cfg.HTTPPorts) }

func addrs(ports []int) []string {
	var out []string
	for _, p := range ports {
		out = append(out, hostPort(p))
	}
	return out
}

// Kill crashes shard's server with SIGKILL and returns once it is gone.
func (c *Cluster) Kill(shard int) error {
	if p := c.Server(shard); p != nil {
		return p.Kill()
	}
	return nil
}

// Crashes is how many times a server exited by itself.
func (c *Cluster) Crashes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashes
}

// Restart stops shard's server if it runs (SIGTERM) and starts it again on the same data,
// ports and configuration, returning once it answers.
func (c *Cluster) Restart(ctx context.Context, shard int) error {
	if p := c.Server(shard); p != nil {
		if err := p.Stop(); err != nil {
			return fmt.Errorf("restart shard %d: %w", shard, err)
		}
	}
	return c.spawn(ctx, shard)
}

// spawn starts shard's server.
func (c *Cluster) spawn(ctx context.Context, shard int) error {
	scfg := SpawnConfig{
		Binary: c.cfg.Binary, DataDir: filepath.Join(c.shardDir(shard), "data"),
		TCPPort: c.cfg.TCPPorts[shard-1], HTTPPort: c.cfg.HTTPPorts[shard-1],
		LogPath: c.LogPath(shard), ConfigFile: c.ConfigFile(shard), CacheDir: c.cfg.CacheDir,
	}
	scfg.OnUnexpectedExit = func(pid int, err error, tail string) {
		if f := c.cfg.OnUnexpectedExit; f != nil {
			f(shard, pid, err, tail)
		}
		c.mu.Lock()
		c.crashes++
		again := c.cfg.Supervise && !c.stopped
		c.mu.Unlock()
		if again {
			go func() {
				time.Sleep(500 * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				_ = c.spawn(ctx, shard) // a failure shows as connection errors, and in the log
			}()
		}
	}
	p, err := Spawn(ctx, scfg)
	if err != nil {
		return fmt.Errorf("clickhouse shard %d: %w", shard, err)
	}
	c.mu.Lock()
	c.servers[shard-1] = p
	c.mu.Unlock()
	return nil
}

// Stop stops every server (SIGTERM, then SIGKILL after the grace) and reports the first error.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	c.stopped = true
	servers := append([]*Process(nil), c.servers...)
	c.mu.Unlock()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, p := range servers {
		if p != nil {
			wg.Go(func() { errs[i] = p.Stop() })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
