// Package soak holds the long fault tests: they spend most of their time waiting, light on CPU,
// so they get a package (a test binary) of their own that `go test ./...` runs beside the others.
package soak

import (
	"os"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

var env *testinfra.Env

func TestMain(m *testing.M) {
	os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true, Kafka: true, Root: true}, &env))
}
