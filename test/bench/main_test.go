// Package bench holds the whole-pipeline benchmarks: packetlake's ingester against ClickHouse's
// own Kafka table engine on the same data, and packet -> queryable-row latency through a live
// collector. Each test binary runs its own Apache Kafka and ClickHouse (testinfra); results and
// commands are in BENCHMARKS.md at the repository root.
package bench

import (
	"os"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

var env *testinfra.Env

func TestMain(m *testing.M) {
	code := testinfra.Main(m, testinfra.Options{ClickHouse: true, Kafka: true, Root: true}, &env)
	stopBenchClusters()
	os.Exit(code)
}
