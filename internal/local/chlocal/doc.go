// Package chlocal installs and runs a real ClickHouse 26.x server for packetlake without a
// system package: the engine comes from npm's chDB build (libchdb.so), is cached once per
// machine (in cache.Dir, so the 178 MB download happens once rather than once per test run),
// and is served either in-process (Server, for `packetlake clickhouse-local`) or as a child
// process (Spawn, for tests and demos that must kill -9 and restart it).
package chlocal
