// Package cluster tests packetlake past one machine, on real clusters started once for this
// test binary: a three-node Apache Kafka (KRaft, RF 3, min ISR 2), a two-shard ClickHouse
// (libchdb servers with remote_servers and macros) and, for comparison, a single ClickHouse.
package cluster

import (
	"os"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

var env *testinfra.Env

func TestMain(m *testing.M) {
	os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true, Root: true, ClickHouseShards: 2, KafkaNodes: 3}, &env))
}
