package chlocal

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/packetlake/packetlake/internal/local/cache"
)

// Config says where an in-process ClickHouse keeps its data and where it listens.
type Config struct {
	// DataDir holds all tables (ClickHouse's --path); required. It is locked by the running
	// server, so two servers can never write to the same directory.
	DataDir string
	// TCPPort (native protocol) and HTTPPort on 127.0.0.1; 0 picks a free port. The server
	// always binds loopback only: user "default" has no password in this mode.
	TCPPort, HTTPPort int
	// ConfigFile is a ClickHouse server configuration (XML) read on top of the defaults, e.g.
	// remote_servers and macros for a server of a cluster (see Cluster); "" means none.
	ConfigFile string
	// CacheDir holds the downloaded engine; "" means cache.Dir().
	CacheDir string
	// Logger receives packetlake's own messages about the server; nil discards them.
	Logger *slog.Logger
}

// withDefaults validates cfg and fills in the defaults documented on Config.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.DataDir == "" {
		return cfg, errors.New("chlocal: Config.DataDir is required")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return cfg, fmt.Errorf("chlocal: data dir %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = abs
	for _, p := range []int{cfg.TCPPort, cfg.HTTPPort} {
		if p < 0 || p > 65535 {
			return cfg, fmt.Errorf("chlocal: port %d out of range 0-65535", p)
		}
	}
	if cfg.TCPPort != 0 && cfg.TCPPort == cfg.HTTPPort {
		return cfg, fmt.Errorf("chlocal: tcp and http port are both %d", cfg.TCPPort)
	}
	if cfg.CacheDir == "" {
		if cfg.CacheDir, err = cache.Dir(); err != nil {
			return cfg, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
