package chconn_test

import (
	"os"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// The tests run against a real ClickHouse, started once for the package. They are an external
// test package: testinfra's launcher imports chconn for its readiness checks.
var env *testinfra.Env

func TestMain(m *testing.M) {
	os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true}, &env))
}
