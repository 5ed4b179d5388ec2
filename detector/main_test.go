package detector

import (
	"os"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// The detector's tests run against a real ClickHouse (every test) and, for the attack tests, a
// real Apache Kafka, the real kernel and real attack tools in test-made network namespaces.
// A missing prerequisite fails the binary: never a skip.
var env *testinfra.Env

func TestMain(m *testing.M) {
	os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true, Kafka: true, Root: true}, &env))
}
