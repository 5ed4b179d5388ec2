// Package e2e holds the tests that cross components: real Kafka, real ClickHouse, and (later) the
// real kernel, started once for this test binary.
package e2e

import (
	"os"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

var env *testinfra.Env

func TestMain(m *testing.M) {
	os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true, Kafka: true, Root: true}, &env))
}
