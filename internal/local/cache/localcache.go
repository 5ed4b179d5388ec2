// Package cache names the directory where packetlake keeps what it downloads once per
// machine (the ClickHouse engine, the Kafka jars), so every launcher agrees on it, and holds the
// file lock (flock) the launchers take so that concurrent processes fetch once and never share
// a data directory.
package cache

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir is $PACKETLAKE_CACHE, else $XDG_CACHE_HOME/packetlake, else ~/.cache/packetlake.
func Dir() (string, error) {
	if d := os.Getenv("PACKETLAKE_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir() // $XDG_CACHE_HOME or ~/.cache on Linux
	if err != nil {
		return "", fmt.Errorf("find cache dir (set PACKETLAKE_CACHE): %w", err)
	}
	return filepath.Join(base, "packetlake"), nil
}
