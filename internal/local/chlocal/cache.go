// Package chlocal installs and runs a real ClickHouse 26.x server for packetlake without a
// system package: the engine comes from npm's chDB build (libchdb.so), is cached once per
// machine, and is served either in-process (Server, for `packetlake clickhouse-local`) or as a
// child process (Spawn, for tests and demos that must kill -9 and restart it).
package chlocal

import "github.com/packetlake/packetlake/internal/local/cache"

// CacheDir is where downloaded artefacts live, so the 178 MB download happens once per machine
// rather than once per test run: $PACKETLAKE_CACHE, else $XDG_CACHE_HOME/packetlake, else
// ~/.cache/packetlake.
func CacheDir() (string, error) { return cache.Dir() }
