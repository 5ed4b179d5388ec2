// Package chlocal installs and runs a real ClickHouse 26.x server for packetlake without a
// system package: the engine comes from npm's chDB build (libchdb.so), is cached once per
// machine, and is served either in-process (Server, for `packetlake clickhouse-local`) or as a
// child process (Spawn, for tests and demos that must kill -9 and restart it).
package chlocal

import (
	"fmt"
	"os"
	"path/filepath"
)

// CacheDir is where downloaded artefacts live, so the 178 MB download happens once per machine
// rather than once per test run: $PACKETLAKE_CACHE, else $XDG_CACHE_HOME/packetlake, else
// ~/.cache/packetlake.
func CacheDir() (string, error) {
	if d := os.Getenv("PACKETLAKE_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir() // $XDG_CACHE_HOME or ~/.cache on Linux
	if err != nil {
		return "", fmt.Errorf("find cache dir (set PACKETLAKE_CACHE): %w", err)
	}
	return filepath.Join(base, "packetlake"), nil
}
